"""The pipes' filters, as the template declares them, pass exactly the stream records each pipe exists for.

Table-driven: one row per (pipe, kind of record) with its required outcome. The template mutator's
``pipe-filter`` mutants (docs/TEST-STRENGTH.md, area template) changed the cancel pipe's status value and
survived every test before this file. Matching is the local pipe's (EventBridge's pattern rules for the forms
the template uses, tested in tests/local/test_pipes.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from taskrail.local.pipes import matches

START, CHANGES = "StartWorkflowPipe", "TaskChangesPipe"


def record(event_name: str, status: str | None, pending: str | None = None) -> dict[str, Any]:
    image = {"taskId": {"S": "t-1"}, **({"status": {"S": status}} if status else {})}
    if pending:
        image["outcomePending"] = {"S": pending}
    return {"eventName": event_name, "dynamodb": {"Keys": {"taskId": {"S": "t-1"}}, "NewImage": image}}


ROWS = [
    (START, record("INSERT", "QUEUED"), True),
    (START, record("MODIFY", "QUEUED"), False),
    (START, record("MODIFY", "RUNNING"), False),
    (START, record("REMOVE", None), False),
    (CHANGES, record("MODIFY", "CANCELLED"), True),
    (CHANGES, record("MODIFY", "RUNNING"), False),
    (CHANGES, record("MODIFY", "INSERT"), False),
    (CHANGES, record("INSERT", "CANCELLED"), False),
    (CHANGES, record("REMOVE", None), False),
    # The outbox: a terminal outcome while pending; the mark (pending removed) and later changes are not.
    *((CHANGES, record("MODIFY", status, pending=status), True) for status in ("SUCCEEDED", "REJECTED", "FAILED")),
    *((CHANGES, record("MODIFY", status), False) for status in ("SUCCEEDED", "REJECTED", "FAILED")),
    (CHANGES, record("MODIFY", "RUNNING", pending="FAILED"), False),
]


def pipe_filters(template: dict[str, Any], name: str) -> list[Any]:
    (pipe,) = [
        resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Pipes::Pipe" and name in logical_id
    ]
    filters = pipe["Properties"]["SourceParameters"].get("FilterCriteria", {}).get("Filters")
    assert filters, f"{name} has no filter: it would receive every record of the stream"
    return [json.loads(f["Pattern"]) for f in filters]


@pytest.mark.parametrize(
    ("pipe", "stream_record", "delivered"),
    ROWS,
    ids=[
        f"{p}-{r['eventName']}-{r['dynamodb']['NewImage'].get('status', {}).get('S')}"
        f"-{'pending' if 'outcomePending' in r['dynamodb']['NewImage'] else ''}"
        for p, r, _ in ROWS
    ],
)
def test_each_pipe_receives_only_the_records_it_is_for(
    template: dict[str, Any], pipe: str, stream_record: dict[str, Any], delivered: bool
):
    # A record reaches the pipe's target when any of its filters matches (Pipes event filtering)
    assert any(matches(pattern, stream_record) for pattern in pipe_filters(template, pipe)) is delivered
