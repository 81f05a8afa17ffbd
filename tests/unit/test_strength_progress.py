"""The progress a csv.summary task reports is the share of its input read (docs/TEST-STRENGTH.md, area lambdas).

docs/TASK-TYPES.md: progress is 0-100, shown by `taskrail watch`, the console and GET /tasks/{id}, reported "every
tenth of the input". With few lines each line is more than a tenth, so each report is the exact share read then.
"""

from __future__ import annotations

import pytest
from fakes import InMemoryTaskStore, a_task
from task_types_support import run_task


@pytest.mark.parametrize(
    ("csv_text", "reports"),
    [
        # 4 lines (header and 3 rows, no newline at the end): rows end at lines 2, 3 and 4 of 4
        ("n\n1\n2\n3", [50, 75, 100]),
        # 5 lines, the last one empty after the final newline: 2, 3, 4 of 5
        ("n\n1\n2\n3\n", [40, 60, 80]),
    ],
)
def test_csv_progress_is_the_share_of_the_inputs_lines_read(csv_text: str, reports: list[int]):
    tasks = InMemoryTaskStore(a_task(type="csv.summary"))

    run_task("csv.summary", {"csv": csv_text}, tasks=tasks)

    assert tasks.progress["task-1"] == reports
