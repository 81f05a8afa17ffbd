"""One task's log lines across all its functions and tries (`taskrail logs <taskId>`).

Every try of ValidateTask and ProcessTask logs with the task id as Powertools' ``correlation_id``
(``task_common.observability.logs_each_try``); the other functions log it in their own lines. An invocation is the
task's when one of its lines carries the id; then all its lines are shown (START, its logs, an error's traceback,
END, REPORT).

* **Locally** the workers write to ``<log dir>/<function name>.log`` (taskrail/local/functions.py): the files are
  read from where the last read stopped (``--follow`` reads again), lines attributed to their invocation by the
  request id, or, for a line without one (awslambdaric's ``[ERROR]`` line), to the one invocation open in that file.
* **On AWS** a CloudWatch Logs Insights query over the stack's log groups, on the correlation id (or the id in the
  message), from the task's creation on.

Standard library only: the CLI imports it on every `taskrail logs`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REQUEST_LINE = re.compile(r"^(START|END|REPORT) RequestId: ([0-9a-fA-F-]{8,})")
PLATFORM_LINE = re.compile(r"^\S+ ([0-9a-fA-F-]{36}) ")  # the pool's own lines: "<iso time> <request id> <message>"
# A Powertools line's request id and time, read without parsing every JSON line of a busy log.
REQUEST_FIELD = re.compile(r'"function_request_id":\s*"([^"]+)"')
TIMESTAMP_FIELD = re.compile(r'^\{.*?"timestamp":\s*"([^"]+)"')
# A log file is read from shortly before the task's first mention (its first invocation's START precedes it by a
# few lines; earlier invocations are other tasks'), or, when it has none yet, only its last part (for --follow).
LEAD_BYTES = 64 * 1024
# Logs Insights results come back after the query ran; a follow re-queries from the last line's time.
INSIGHTS_QUERY = (
    "fields @timestamp, @log, @message, function_request_id"
    ' | filter correlation_id = "{task_id}" or @message like "{task_id}"'
    " | sort @timestamp asc | limit 10000"
)
INSIGHTS_DONE = frozenset({"Complete", "Failed", "Cancelled", "Timeout"})


@dataclass(frozen=True)
class LogLine:
    function: str
    request_id: str
    text: str
    timestamp: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "requestId": self.request_id,
            "timestamp": self.timestamp or None,
            "message": self.text,
        }


def function_of(log_name: str) -> str:
    """``taskrail-ProcessTaskFunction`` (a log file's or log group's name) as people name it: ``ProcessTask``."""
    name = log_name.rsplit("/", 1)[-1].removesuffix(".log")
    name = name.split("-", 1)[1] if name.startswith("taskrail-") else name
    return name.removesuffix("Function")


def _json_of(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


@dataclass
class _Invocation:
    request_id: str
    lines: list[str] = field(default_factory=list)
    ours: bool = False
    ended: bool = False


@dataclass
class _FileState:
    offset: int = 0
    open: dict[str, _Invocation] = field(default_factory=dict)  # by request id, in START order


class LocalTaskLogs:
    """Reads a local stack's function logs for one task; each :meth:`read` returns the lines new since the last."""

    def __init__(self, log_dir: Path, task_id: str) -> None:
        self.log_dir, self.task_id = log_dir, task_id
        self._files: dict[Path, _FileState] = {}

    def files(self) -> list[Path]:
        return sorted(p for p in self.log_dir.glob("*.log") if not p.name.startswith("iam-"))

    def read(self) -> list[LogLine]:
        found: list[LogLine] = []
        for path in self.files():
            state = self._files.get(path) or self._first_read(path)
            with path.open("rb") as file:
                file.seek(state.offset)
                data = file.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written is read next time
            state.offset += len(complete)
            function = function_of(path.name)
            # "\n" ends a line; awslambdaric joins an error's traceback with "\r" (one CloudWatch event): kept whole.
            for raw in complete.decode(errors="replace").split("\n")[:-1]:
                found.extend(LogLine(function, rid, text, stamp) for rid, text, stamp in self._line(state, raw))
        return found

    def _first_read(self, path: Path) -> _FileState:
        data = path.read_bytes()
        mention = data.find(self.task_id.encode())
        start = max(0, (mention if mention >= 0 else len(data)) - LEAD_BYTES)
        state = self._files[path] = _FileState(offset=data.find(b"\n", start - 1) + 1 if start else 0)
        return state

    def _line(self, state: _FileState, line: str) -> Iterator[tuple[str, str, str]]:
        mentions = self.task_id in line  # its correlation_id, or the id in a message
        request_id = self._request_of(state, line)
        if request_id is None:
            if mentions:
                yield "", line, _stamp(line)
            return
        invocation = state.open.setdefault(request_id, _Invocation(request_id))
        invocation.lines.append(line)
        if mentions and not invocation.ours:
            invocation.ours = True
            for earlier in invocation.lines[:-1]:
                yield request_id, earlier, _stamp(earlier)
        if invocation.ours:
            yield request_id, line, _stamp(line)
        if line.startswith("REPORT RequestId:"):
            state.open.pop(request_id, None)
        else:
            invocation.lines = invocation.lines if not invocation.ours else []

    @staticmethod
    def _request_of(state: _FileState, line: str) -> str | None:
        marker = REQUEST_LINE.match(line)
        if marker:
            return marker.group(2)
        field = REQUEST_FIELD.search(line) if line.startswith("{") else None
        if field:
            return field.group(1)
        platform = PLATFORM_LINE.match(line)
        if platform and platform.group(1) in state.open:
            return platform.group(1)
        # awslambdaric's own lines (an error and its traceback) name no request: the one open in this file's
        # workers, when there is one; with two open the line is shown only if it names the task.
        return next(iter(state.open)) if len(state.open) == 1 else None


def _stamp(line: str) -> str:
    found = TIMESTAMP_FIELD.match(line)
    return found.group(1) if found else ""


# -- AWS: CloudWatch Logs Insights ------------------------------------------------------------------------------


def stack_log_groups(cloudformation: Any, stack: str) -> list[str]:
    """The log groups the stack declares (one per function, infra/constructs/functions.py)."""
    groups: list[str] = []
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
        groups += [
            r["PhysicalResourceId"]
            for r in page["StackResourceSummaries"]
            if r["ResourceType"] == "AWS::Logs::LogGroup"
        ]
    return sorted(groups)


def insights_lines(
    logs: Any,
    log_groups: list[str],
    task_id: str,
    *,
    start_s: int,
    end_s: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    timeout: float = 120,
) -> list[LogLine]:
    """One Logs Insights query for the task's lines in ``log_groups`` from ``start_s`` (epoch seconds)."""
    query_id = logs.start_query(
        logGroupNames=log_groups,
        startTime=start_s,
        endTime=end_s or int(time.time()) + 60,
        queryString=INSIGHTS_QUERY.format(task_id=task_id.replace('"', "")),
    )["queryId"]
    deadline = time.monotonic() + timeout
    while True:
        answer = logs.get_query_results(queryId=query_id)
        if answer["status"] in INSIGHTS_DONE:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the Logs Insights query {query_id} did not finish within {timeout} s")
        sleep(0.5)
    if answer["status"] != "Complete":
        raise RuntimeError(f"the Logs Insights query {query_id} ended {answer['status']}")
    return [_insights_line(row) for row in answer.get("results", [])]


def _insights_line(row: Iterable[dict[str, str]]) -> LogLine:
    fields = {cell["field"]: cell["value"] for cell in row}
    return LogLine(
        function=function_of(fields.get("@log", "").rsplit(":", 1)[-1]),
        request_id=fields.get("function_request_id", ""),
        text=fields.get("@message", "").rstrip("\n"),
        timestamp=fields.get("@timestamp", ""),
    )


def in_order(lines: list[LogLine]) -> list[LogLine]:
    """Each invocation's lines together, invocations by their first timestamp (START and END lines have none)."""
    groups: dict[tuple[str, str], list[LogLine]] = {}
    for line in lines:
        groups.setdefault((line.function, line.request_id or line.text), []).append(line)
    first = {
        key: min((line.timestamp for line in group if line.timestamp), default="~") for key, group in groups.items()
    }
    return [line for key in sorted(groups, key=lambda k: first[k]) for line in groups[key]]


def is_metrics(line: LogLine) -> bool:
    """An EMF document (Powertools' metrics): CloudWatch's, not a person's, to read."""
    return line.text.startswith('{"_aws":')


def readable(line: LogLine, *, tracebacks: bool = True) -> str:
    """A Powertools JSON line as ``LEVEL message key=value…``; any other line as it is (an error's traceback on
    the lines below it, or, without ``tracebacks``, counted)."""
    document = _json_of(line.text)
    if document is None or "message" not in document:
        first, *rest = line.text.rstrip("\r").split("\r")
        if rest and not tracebacks:
            return f"{first} (a traceback of {len(rest)} lines: `--json`, or piped, prints it)"
        return "\n    ".join([first, *rest])
    skipped = {
        "level",
        "message",
        "timestamp",
        "location",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "correlation_id",
        "xray_trace_id",
    }
    extra = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in document.items() if k not in skipped)
    return f"{document.get('level', '')} {document['message']}" + (f" {extra}" if extra else "")
