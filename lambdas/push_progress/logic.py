"""Push: each stream record of a task's change becomes one message to each of its owner's connections that
subscribed to that task or to all of their tasks.

- Isolation: connections are found by the task's owner (``userId``, the owner index), so a connection of another
  owner never receives the task, whatever it subscribed to.
- Order: records are handled one after the other, in the batch's (the stream's) order, and a record's posts all end
  before the next record's begin, so a connection receives a task's messages in the order of its writes. When a
  record cannot be handled (the owner index's Query fails), the batch stops there and reports that record and every
  later one as failed (Pipes' partial batch failure, by ``eventID``): the pipe retries from that record, so the
  records already posted are not posted again and a client never sees a task's progress go back. A record that is
  not a task's change is skipped (a retry cannot fix it).
- A slow or dead client cannot hold the batch: each post has a short budget and no retry; a gone connection's row
  is deleted; no failure of one connection fails the batch (which would resend it to every connection).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from push_progress.models import (
    Connection,
    ItemFailure,
    ProgressMessage,
    PushSummary,
    StreamRecord,
    TaskChange,
    TaskError,
)
from push_progress.ports import ConnectionGone, ConnectionPoster, Connections, PostFailed
from task_common.contract import ALL_TASKS, Status
from task_common.observability import logger, metrics, tracer
from task_common.ports import parse_s3_uri

POSTED, GONE, FAILED = "posted", "gone", "failed"


def message_of(change: TaskChange) -> ProgressMessage:
    result_key = None
    if change.status == Status.SUCCEEDED and change.result_location:
        try:
            result_key = parse_s3_uri(change.result_location)[1]
        except ValueError:  # not the workflow's s3:// form: the client reads the result from the API instead
            logger.warning("a result location that is not an s3:// URI", extra={"taskId": change.task_id})
    error = None
    if change.status in (Status.FAILED, Status.REJECTED) and change.error:
        error = TaskError(code=change.error, message=change.cause)
    return ProgressMessage(
        task_id=change.task_id,
        status=change.status,
        progress=change.progress,
        attempt=change.attempt,
        updated_at=change.updated_at,
        result_key=result_key,
        error=error,
    )


def subscribers(connections: Iterable[Connection], task_id: str) -> list[str]:
    """The connections subscribed to ``task_id`` or to all tasks (a connection that never subscribed gets nothing)."""
    return [c.connection_id for c in connections if c.task_id in (task_id, ALL_TASKS)]


@tracer.capture_method
def push_changes(
    records: list[StreamRecord],
    *,
    connections: Connections,
    poster: ConnectionPoster,
    pool: ThreadPoolExecutor,
) -> PushSummary:
    outcomes: list[str] = []
    skipped = 0
    failures: list[ItemFailure] = []
    for index, record in enumerate(records):
        try:
            change = TaskChange.of(record)
        except ValidationError:
            logger.exception("a stream record that is not a task's change: skipped", extra={"eventID": record.event_id})
            skipped += 1
            continue
        try:
            targets = subscribers(connections.of_owner(change.user_id), change.task_id)
        except Exception:
            remaining = records[index:]
            if any(not later.event_id for later in remaining):
                raise  # a record without its eventID cannot be named: the pipe retries the whole batch
            failures = [ItemFailure(item_identifier=str(later.event_id)) for later in remaining]
            logger.exception(
                "the owner's connections could not be read: the pipe retries from this record",
                extra={"taskId": change.task_id, "eventID": record.event_id, "retried": len(failures)},
            )
            break
        if not targets:
            continue
        data = message_of(change).to_bytes()
        outcomes.extend(pool.map(partial(_post, data=data, connections=connections, poster=poster), targets))
    summary = PushSummary(
        records=len(records),
        posted=outcomes.count(POSTED),
        gone=outcomes.count(GONE),
        failed=outcomes.count(FAILED),
        skipped=skipped,
        batch_item_failures=failures,
    )
    for name, value in (("MessagesPosted", summary.posted), ("ConnectionsGone", summary.gone)):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name="PostsFailed", unit=MetricUnit.Count, value=summary.failed)
    metrics.add_metric(name="RecordsRetried", unit=MetricUnit.Count, value=len(failures))
    return summary


def _post(connection_id: str, data: bytes, connections: Connections, poster: ConnectionPoster) -> str:
    try:
        poster.post(connection_id, data)
    except ConnectionGone:
        try:
            connections.delete(connection_id)
        except Exception:  # the row expires by TTL anyway; the batch goes on
            logger.exception("could not delete a gone connection's row", extra={"connectionId": connection_id})
        return GONE
    except PostFailed as error:
        logger.warning(
            "a message did not reach its connection", extra={"connectionId": connection_id, "error": str(error)}
        )
        return FAILED
    except Exception:  # one connection never fails the batch
        logger.exception("posting to a connection failed", extra={"connectionId": connection_id})
        return FAILED
    return POSTED
