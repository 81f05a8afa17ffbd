"""Task-type behaviours that surviving mutants showed no test held (docs/TEST-STRENGTH.md, area lambdas)."""

from __future__ import annotations

import pytest
from fakes import InMemoryTaskStore, a_task
from test_task_types import run_task

import task_types.diagnostic_sleep


def test_text_stats_reports_progress_once_per_ten_percent_of_lines_in_order_up_to_100():
    # Given a text of 25 lines (each line is 4 % of the work, so no line lands on most multiples of ten)
    tasks = InMemoryTaskStore(a_task(type="text.stats"))
    text = "\n".join(f"line {n}" for n in range(1, 26))

    # When it runs
    run_task("text.stats", {"text": text}, tasks=tasks)

    # Then progress went up in steps of ten percent: one report in each tenth, each the true share of lines
    # read when that tenth was reached, the last one 100
    reports = tasks.progress["task-1"]
    assert reports == sorted(reports) and reports[-1] == 100
    assert [p // 10 for p in reports[:-1]] == list(range(1, 10))
    assert all(p == n * 100 // 25 for p, n in zip(reports, [3, 5, 8, 10, 13, 15, 18, 20, 23, 25], strict=True))


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

    # Then one report in each tenth of the lines, in order (the share read so far, the first at 10 %)
    reports = tasks.progress["task-1"]
    assert [p // 10 for p in reports] == list(range(1, 10)) + ([10] if reports[-1] == 100 else [])
    assert reports == sorted(reports)
