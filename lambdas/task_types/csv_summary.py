"""``csv.summary``: per-column counts, distinct values, numeric statistics and the most frequent values."""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import Field

from task_common.errors import PermanentTaskError
from task_types.base import TaskContext, TaskType
from task_types.sources import InlineOrSourceParams, InlineText

TOP_VALUES = 5
PROGRESS_STEP = 10
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


class CsvSummaryParams(InlineOrSourceParams):
    inline_field: ClassVar[str] = "csv"

    csv: InlineText | None = None
    delimiter: str = Field(default=",", min_length=1, max_length=1, pattern=r'^[^"\r\n]$')
    has_header: bool = True


def _number(value: str) -> int | float | None:
    if _INTEGER.fullmatch(value):
        return int(value)
    if _NUMBER.fullmatch(value):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


@dataclass
class _Numbers:
    """Welford's running mean and variance, so a column's values need not be kept."""

    count: int = 0
    mean: float = 0.0
    squares: float = 0.0
    minimum: int | float = math.inf
    maximum: int | float = -math.inf

    def add(self, number: int | float) -> None:
        self.count += 1
        delta = number - self.mean
        self.mean += delta / self.count
        self.squares += delta * (number - self.mean)
        self.minimum = min(self.minimum, number)
        self.maximum = max(self.maximum, number)

    def summary(self) -> dict[str, Any]:
        return {
            "min": self.minimum,
            "max": self.maximum,
            "mean": round(self.mean, 6),
            "stddev": round(math.sqrt(self.squares / self.count), 6),
        }


@dataclass
class _Column:
    name: str
    values: Counter[str] = field(default_factory=Counter)
    empty: int = 0
    numbers: _Numbers | None = field(default_factory=_Numbers)

    def add(self, value: str) -> None:
        value = value.strip()
        if not value:
            self.empty += 1
            return
        self.values[value] += 1
        if self.numbers is not None:
            number = _number(value)
            if number is None:
                self.numbers = None
            else:
                self.numbers.add(number)

    def summary(self) -> dict[str, Any]:
        count = sum(self.values.values())
        summary: dict[str, Any] = {"name": self.name, "count": count, "empty": self.empty}
        summary["distinct"] = len(self.values)
        if self.numbers is not None and count:
            summary["numeric"] = self.numbers.summary()
        top = sorted(self.values.items(), key=lambda item: (-item[1], item[0]))[:TOP_VALUES]
        summary["top"] = [{"value": value, "count": n} for value, n in top]
        return summary


class _Table:
    def __init__(self, header: list[str] | None) -> None:
        self.columns = [_Column(name.strip() or _default_name(i)) for i, name in enumerate(header or [])]
        self.row_count = 0

    def add(self, row: list[str]) -> None:
        while len(self.columns) < len(row):
            column = _Column(_default_name(len(self.columns)))
            column.empty = self.row_count
            self.columns.append(column)
        for i, column in enumerate(self.columns):
            column.add(row[i] if i < len(row) else "")
        self.row_count += 1


def _default_name(index: int) -> str:
    return f"column{index + 1}"


def run(params: CsvSummaryParams, ctx: TaskContext) -> dict[str, Any]:
    text = params.load_text(ctx.blobs).removeprefix("\ufeff")
    total_lines = text.count("\n") + 1
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=params.delimiter)
    next_report = PROGRESS_STEP
    try:
        rows = (row for row in reader if row)
        table = _Table(next(rows, None) if params.has_header else None)
        for row in rows:
            table.add(row)
            percent = reader.line_num * 100 // total_lines
            if percent >= next_report:
                ctx.report_progress(percent)
                next_report = percent - percent % PROGRESS_STEP + PROGRESS_STEP
    except csv.Error as error:
        raise PermanentTaskError(f"the CSV cannot be read at line {reader.line_num}: {error}") from error
    return {"rowCount": table.row_count, "columns": [column.summary() for column in table.columns]}


# One pass over an S3 object (streamed): 45 s a try, so that five tries fit an EXPRESS lifecycle.
TASK_TYPE = TaskType(name="csv.summary", params_model=CsvSummaryParams, run=run, max_duration_seconds=45)
