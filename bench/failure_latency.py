"""8. From a failure to its DLQ message, on the local stack (issue 19).

A poison task (``diagnostic.poison``, no fix marker) fails permanently at ProcessTask. Measured per task, from the
execution's history and the message's own ``SentTimestamp``: the failed attempt (ProcessTask's failure event) ->
the execution's end -> the DLQ message sent. Before issue 19 the failure was caught (RecordFailure -> TaskFailed)
and the outbox sent the message from that write; since, the execution ends at ProcessTask, its status-change event
starts the failure recorder, and the outbox sends from the recorder's write. Tasks run one at a time.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

POLL_SECONDS = 0.02
FIX_MARKER_KEY = "diagnostics/poison-fixed"  # task_types.diagnostic_poison


@dataclass
class FailureLatency:
    to_dlq_ms: list[float] = field(default_factory=list)  # ProcessTask's failed attempt -> DLQ message sent
    to_end_ms: list[float] = field(default_factory=list)  # ProcessTask's failed attempt -> execution ended
    end_to_dlq_ms: list[float] = field(default_factory=list)  # execution ended -> DLQ message sent
    missing: int = 0  # no DLQ message within the deadline

    @staticmethod
    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")


def _epoch(event: dict[str, Any]) -> float:
    value = event["timestamp"]
    return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)


def _take_message(sqs: Any, url: str, task_id: str) -> dict[str, Any] | None:
    """The task's DLQ message (deleted once read), other messages made visible again; None if not there yet."""
    found, others = None, []
    while batch := sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, MessageSystemAttributeNames=["SentTimestamp"]
    ).get("Messages", []):
        for message in batch:
            if found is None and json.loads(message["Body"]).get("taskId") == task_id:
                found = message
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                others.append(message)
    for message in others:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return found


def failure_to_dlq_latency(stack: Any, *, runs: int = 5, timeout: float = 60) -> FailureLatency:
    from taskrail.history import FAILURE_EVENTS
    from taskrail.local.accounts import user_client

    info = stack.info
    client = user_client(info, "alice")
    sqs, sfn = stack.clients("sqs"), stack.clients("stepfunctions")
    stack.clients("s3").delete_object(Bucket=info.results_bucket, Key=FIX_MARKER_KEY)
    result = FailureLatency()
    for _ in range(runs):
        task_id = client.submit("diagnostic.poison", {})["taskId"]
        deadline = time.monotonic() + timeout
        message = None
        while message is None and time.monotonic() < deadline:
            message = _take_message(sqs, info.dead_letter_queue_url, task_id)
            if message is None:
                time.sleep(POLL_SECONDS)
        if message is None:
            result.missing += 1
            continue
        sent = int(message["Attributes"]["SentTimestamp"]) / 1000
        events = sfn.get_execution_history(executionArn=json.loads(message["Body"])["executionArn"], maxResults=1000)[
            "events"
        ]
        failed = max(_epoch(e) for e in events if e["type"] in FAILURE_EVENTS)
        ended = _epoch(events[-1])
        result.to_dlq_ms.append((sent - failed) * 1000)
        result.to_end_ms.append((ended - failed) * 1000)
        result.end_to_dlq_ms.append((sent - ended) * 1000)
    return result


def failure_lines(result: FailureLatency | None) -> str:
    """The section as markdown (printed by `make bench` and appended to docs/BENCHMARKS.md)."""
    if result is None:
        return "## 8. Failure to DLQ message (local stack)\n\nnot measured (the phase failed)\n"
    rows = [
        ("ProcessTask's failed attempt → DLQ message sent", result.to_dlq_ms),
        ("ProcessTask's failed attempt → execution ended", result.to_end_ms),
        ("execution ended → DLQ message sent", result.end_to_dlq_ms),
    ]
    lines = [
        "## 8. Failure to DLQ message (local stack)",
        "",
        f"{len(result.to_dlq_ms)} poison task(s), one at a time; {result.missing} without a message within the "
        "deadline. From the execution's history and the message's SentTimestamp.",
        "",
        "| interval | median | min | max |",
        "|---|---:|---:|---:|",
    ]
    for label, values in rows:
        if values:
            lines.append(f"| {label} | {result.median(values):.0f} ms | {min(values):.0f} ms | {max(values):.0f} ms |")
    return "\n".join(lines) + "\n"
