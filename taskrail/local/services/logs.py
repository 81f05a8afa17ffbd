"""Amazon CloudWatch Logs: a Logs Insights query filters, and sees a JSON log event's fields, as CloudWatch does.

moto 5.2.5 parses only ``fields``, ``sort`` and ``limit`` of a Logs Insights query (``moto.logs.logs_query``): it
ignores ``filter`` and answers every event of the log groups, discovers no field of a JSON event, and names the
group in ``@log`` without its account. `taskrail logs ID` on AWS (``taskrail.task_logs.INSIGHTS_QUERY``) asks for
one task's lines by ``filter correlation_id = "ID" or @message like "ID"``: moto would answer every task's lines.

What CloudWatch documents ("Supported logs and discovered fields",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html, and
"CloudWatch Logs Insights language query syntax",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html):

- the system fields ``@message``, ``@timestamp``, ``@logStream``, ``@ingestionTime``, and ``@log``, "a log group
  identifier in the form of account-id:log-group-name";
- the fields of a JSON log event are discovered (a nested field as ``a.b``);
- ``filter`` keeps the events whose expression holds: here ``=``, ``!=``, ``like "text"`` (contains) and
  ``like /regex/``, joined by ``and`` (first) and ``or``.

A query using any other command or expression is refused (MalformedQueryException, naming the part), never answered
as if unfiltered. Results list a row's requested fields that the event has, and ``@ptr``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any, Final

import moto.logs.models as logs_models
from moto.logs.exceptions import LogsClientError
from moto.logs.logs_query import execute_query

from taskrail.local.services.patching import Patch, Signature, Source, patch, unpatch

__all__ = ["PATCHES", "InsightsQuery", "execute_insights_query"]

_COMMAND = re.compile(r"\s*(fields|filter|sort|limit)\s+(.*?)\s*$", re.DOTALL)
_TERM = re.compile(r'\s*(@?[\w.]+)\s*(=|!=|\blike\b)\s*("(?:[^"\\]|\\.)*"|/(?:[^/\\]|\\.)*/|-?\d+(?:\.\d+)?)\s*$')
_SPLIT_PIPES = re.compile(r'\|(?=(?:[^"]*"[^"]*")*[^"]*$)')


class MalformedQuery(LogsClientError):
    def __init__(self, message: str) -> None:
        super().__init__("MalformedQueryException", message)


Predicate = Callable[[dict[str, Any]], bool]


def _literal(text: str) -> Any:
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("/"):
        return re.compile(text[1:-1])
    return float(text)


def _term(text: str) -> Predicate:
    found = _TERM.match(text)
    if found is None:
        raise MalformedQuery(f"the local stack's Logs Insights does not support the filter term {text.strip()!r}")
    field, operator, value = found.group(1), found.group(2), _literal(found.group(3))

    def holds(event: dict[str, Any]) -> bool:
        if field not in event:
            return False
        actual = event[field]
        if operator == "like":
            return bool(value.search(str(actual))) if isinstance(value, re.Pattern) else str(value) in str(actual)
        numeric = isinstance(value, float) and isinstance(actual, int | float)
        equal = actual == value if numeric else str(actual) == value
        return equal if operator == "=" else not equal

    return holds


def _split_words(text: str, word: str) -> list[str]:
    """``text`` split on `` word `` outside double quotes and slashes."""
    parts, current, quote = [], "", ""
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            current += char
            if char == "\\" and i + 1 < len(text):
                current += text[i + 1]
                i += 1
            elif char == quote:
                quote = ""
        elif char in '"/':
            quote, current = char, current + char
        elif text[i : i + len(word) + 2].lower() == f" {word} ":
            parts.append(current)
            current, i = "", i + len(word) + 2
            continue
        else:
            current += char
        i += 1
    return [*parts, current]


def _filter(text: str) -> Predicate:
    alternatives = [[_term(t) for t in _split_words(part, "and")] for part in _split_words(text, "or")]
    return lambda event: any(all(term(event) for term in terms) for terms in alternatives)


class InsightsQuery:
    """The part of the Logs Insights language taskrail uses: fields, filter, sort, limit."""

    def __init__(self, text: str) -> None:
        self.fields: list[str] = []
        self.filters: list[Predicate] = []
        self.sort: tuple[str, bool] = ("@timestamp", True)  # descending by default
        self.limit = 10_000
        for command in _SPLIT_PIPES.split(text):
            if not command.strip():
                continue
            found = _COMMAND.match(command)
            if found is None:
                raise MalformedQuery(f"the local stack's Logs Insights does not support {command.strip()!r}")
            name, argument = found.groups()
            if name == "fields":
                self.fields += [f.strip() for f in argument.split(",") if f.strip()]
            elif name == "filter":
                self.filters.append(_filter(argument))
            elif name == "sort":
                field, _, order = argument.partition(" ")
                self.sort = (field.strip(), order.strip().lower() != "asc")
            else:
                self.limit = int(argument)

    def matches(self, event: dict[str, Any]) -> bool:
        return all(holds(event) for holds in self.filters)


def _flattened(document: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in document.items():
        if isinstance(value, dict):
            yield from _flattened(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _event_fields(event: Any, stream: Any, group: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    try:
        document = json.loads(event.message)
    except ValueError:
        document = None
    if isinstance(document, dict):
        fields.update(_flattened(document))
    fields.update(
        {
            "@message": event.message,
            "@timestamp": event.timestamp,
            "@ingestionTime": event.ingestion_time,
            "@logStream": stream.log_stream_name,
            "@log": f"{group.account_id}:{group.name}",
            "@ptr": str(event.event_id),
        }
    )
    return fields


def _within(timestamp_ms: int, start_s: int, end_s: int) -> bool:
    return not (start_s and timestamp_ms < start_s * 1000) and not (end_s and timestamp_ms > end_s * 1000)


def execute_insights_query(log_groups: list[Any], query: str, start_time: int, end_time: int) -> list[dict[str, Any]]:
    """moto's ``execute_query``, with ``filter`` and discovered fields (times in epoch seconds, events' in ms)."""
    parsed = InsightsQuery(query)
    rows = []
    for group in log_groups:
        for stream in group.streams.values():
            for event in stream.events:
                if not _within(event.timestamp, start_time, end_time):
                    continue
                fields = _event_fields(event, stream, group)
                if parsed.matches(fields):
                    rows.append(fields)
    field, descending = parsed.sort
    rows.sort(key=lambda row: (field in row, row.get(field, 0)), reverse=descending)
    wanted = parsed.fields or ["@timestamp", "@message"]
    return [{name: row[name] for name in ("@ptr", *wanted) if name in row} for row in rows[: parsed.limit]]


def install_insights_filters() -> None:
    patch(logs_models, "execute_query", execute_insights_query)


def uninstall_insights_filters() -> None:
    unpatch(logs_models, "execute_query")


INSIGHTS: Final = Patch(
    "CloudWatch Logs Insights: filter and discovered fields",
    depends=(
        Source("moto.logs.models.LogQuery.__init__", lambda: logs_models.LogQuery.__init__, ("execute_query(",)),
        Signature(
            "moto.logs.logs_query.execute_query",
            lambda: execute_query,
            ("log_groups", "query", "start_time", "end_time"),
        ),
        Source(
            "moto.logs.models.LogEvent.__init__",
            lambda: logs_models.LogEvent.__init__,
            ("self.ingestion_time = ingestion_time", 'self.timestamp = log_event["timestamp"]', "self.event_id"),
        ),
        Source("moto.logs.models.LogGroup.__init__", lambda: logs_models.LogGroup.__init__, ("self.account_id",)),
    ),
    install=install_insights_filters,
    uninstall=uninstall_insights_filters,
)

PATCHES: Final = (INSIGHTS,)
