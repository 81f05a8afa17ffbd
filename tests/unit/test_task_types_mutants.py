"""Task-type behaviours that surviving mutants showed no test held (docs/TEST-STRENGTH.md, area lambdas)."""

from __future__ import annotations

import pytest
from fakes import InMemoryTaskStore, a_task
from test_task_types import rejection, run_task

import task_types.diagnostic_sleep

# (lines, the reports required): one report when the share of lines read first reaches a new tenth, the share
# rounded down; 25 lines: every line is 4 %, so only lines 3, 5, 8, 10, ... reach a new tenth; 7 lines: every
# line is a new tenth (14.28 % each, rounded down)
TEXT_PROGRESS = [
    (25, [12, 20, 32, 40, 52, 60, 72, 80, 92, 100]),
    (7, [14, 28, 42, 57, 71, 85, 100]),
]


@pytest.mark.parametrize(("lines", "reports"), TEXT_PROGRESS)
def test_text_stats_reports_progress_once_per_ten_percent_of_lines_in_order_up_to_100(lines: int, reports: list[int]):
    # Given a text of that many lines
    tasks = InMemoryTaskStore(a_task(type="text.stats"))
    text = "\n".join(f"line {n}" for n in range(1, lines + 1))

    # When it runs
    run_task("text.stats", {"text": text}, tasks=tasks)

    # Then progress went up once per tenth reached, each report the true share read then, the last one 100
    assert tasks.progress["task-1"] == reports


@pytest.mark.parametrize(("seconds", "steps"), [(6.0, 3), (0.5, 4)])
def test_a_sleep_task_sleeps_its_seconds_in_equal_steps(monkeypatch: pytest.MonkeyPatch, seconds: float, steps: int):
    # Given a sleeper that records what the task asks for (no real sleeping)
    asked: list[float] = []
    monkeypatch.setattr(task_types.diagnostic_sleep.time, "sleep", asked.append)

    # When a diagnostic.sleep task runs
    result = run_task("diagnostic.sleep", {"seconds": seconds, "steps": steps})

    # Then it slept its seconds in total, in that many equal steps
    assert result == {"slept": seconds}
    assert asked == pytest.approx([seconds / steps] * steps)


def test_csv_summary_reports_progress_once_per_ten_percent_of_lines_in_order():
    # Given a CSV of a header and a hundred rows
    tasks = InMemoryTaskStore(a_task(type="csv.summary"))
    csv_text = "n\n" + "".join(f"{n}\n" for n in range(100))

    # When summarised
    run_task("csv.summary", {"csv": csv_text}, tasks=tasks)

    # Then one report as each tenth of the lines is reached, the share read then: the text counts 102 lines (the
    # header, 100 rows, the empty end after the last newline), so lines 11, 21, ... 91 reach 10 %, 20 %, ... 90 %
    # (the last row is 99 %; process_task reports the 100)
    assert tasks.progress["task-1"] == [10, 20, 30, 40, 50, 60, 70, 80, 90]


def test_a_refusal_names_five_errors_and_counts_the_rest():
    # Given parameters with six unknown fields (each one an error; the models forbid extra fields)
    params = {"csv": "a\n1", **{f"unknown{n}": n for n in range(6)}}

    # When validated, Then five errors are named and the sixth is counted, never dropped silently
    message = rejection("csv.summary", params)
    assert message.count("Extra inputs are not permitted") == 5
    assert message.endswith("; and 1 more")
