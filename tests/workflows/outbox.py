"""The task-changes pipe, run by hand on the in-process platform (which runs no pipes): each task's latest change
that passes the template's TaskChangesPipe filters goes, as the pipe's batch of one, to the task-changes function
(lambdas/task_changes: cancels, outcome events, DLQ messages)."""

from __future__ import annotations

import json
from typing import Any

from taskrail.local.inprocess import Platform
from taskrail.local.pipes import matches

PIPE = "TaskChangesPipe"
FUNCTION = "TaskChangesFunction"


def _filters(platform: Platform) -> list[Any]:
    (pipe,) = [
        resource
        for logical_id, resource in platform.template["Resources"].items()
        if resource["Type"] == "AWS::Pipes::Pipe" and PIPE in logical_id
    ]
    return [json.loads(f["Pattern"]) for f in pipe["Properties"]["SourceParameters"]["FilterCriteria"]["Filters"]]


def _function_name(platform: Platform) -> str:
    (name,) = [spec.name for spec in platform.resources.functions.values() if spec.name.endswith(FUNCTION)]
    return name


def _records(platform: Platform) -> list[dict[str, Any]]:
    """A MODIFY record per task with the item as its NEW_IMAGE: the latest change's record, which is what the outbox
    acts on (moto's decorator mode answers DescribeStream "Not yet implemented", so the stream itself is not read
    here; the local stack's pipes read it)."""
    dynamodb, records = platform.client("dynamodb"), []
    for page in dynamodb.get_paginator("scan").paginate(TableName=platform.tasks_table, ConsistentRead=True):
        for item in page["Items"]:
            keys = {"taskId": item["taskId"]}
            records.append({"eventName": "MODIFY", "dynamodb": {"Keys": keys, "NewImage": item}})
    return records


def deliver_task_changes(platform: Platform, *, retries: int = 10) -> list[dict[str, Any]]:
    """Runs the pipe until the stream has no undelivered matching record (the records the function's own writes add
    are read on the next round); a failed invocation is retried like the pipe's (MaximumRetryAttempts). Returns the
    function's results."""
    seen: set[str] = platform.__dict__.setdefault("_task_changes_seen", set())
    filters, results = _filters(platform), []
    for _round in range(20):
        fresh = [r for r in _records(platform) if json.dumps(r, sort_keys=True) not in seen]
        if not fresh:
            return results
        for record in fresh:
            seen.add(json.dumps(record, sort_keys=True))
            if not any(matches(pattern, record) for pattern in filters):
                continue
            for _try in range(retries + 1):
                outcome = platform.functions(_function_name(platform), json.dumps([record]).encode(), None)
                if outcome.function_error is None:
                    results.append(json.loads(outcome.payload))
                    break
            else:
                raise AssertionError(f"the task-changes function failed every retry: {outcome.payload!r}")
    raise AssertionError("the task-changes records never settled")


def give_up(platform: Platform) -> int:
    """The pipe gives up on every record the stream holds now (after its retries they went to the pipe's DLQ): they
    are never delivered, only a later change of the item is. Returns how many."""
    seen: set[str] = platform.__dict__.setdefault("_task_changes_seen", set())
    records = _records(platform)
    seen.update(json.dumps(r, sort_keys=True) for r in records)
    return len(records)
