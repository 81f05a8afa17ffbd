"""A snapshot of moto's data, so that a restarted local stack does not start from nothing (moto 5.2.5 exactly).

moto 5.2.5 has no persistence of its own (its recorder replays requests, executions and all). What a restart
needs is the data; everything else comes from the template again, as at any start. So the snapshot holds, for
the local account and region:

* **DynamoDB**: each table's items (``Table.items``) with its key schema; restored only into a table of the same
  name and key schema. Written straight into the table, so no stream record is made: the pipes do not deliver the
  restored items again;
* **S3**: each bucket's keys (``FakeBucket.keys``, every version; ``FakeKey`` pickles its value itself);
* **SQS**: each queue's messages (``Queue._messages``), all visible again, as when a visibility timeout ends.

Not held: Step Functions executions (live interpreter objects, threads included), SNS/EventBridge deliveries
in flight, IAM (derived from the template). docs/LOCAL-EMULATOR.md says how tasks that were in flight at the stop
end up accounted for. What the executions were is kept apart, as DescribeExecution and GetExecutionHistory answered
at the stop (:func:`archive_executions`, ``executions.json``): :func:`restore_executions` gives the finished ones back
to moto as :class:`RestoredExecution` s, so ListExecutions, DescribeExecution, GetExecutionHistory (`taskrail
history`, the console) answer for them after a restart as before it. They are records, not runs: one cannot be
redriven locally (its interpreter state is gone; `taskrail replay` starts a new execution instead), and an execution
still running at the stop is not given back (the reconciler settles its task).

The file is a pickle, so loading it runs what it says: it is written 0600 in a 0700 folder and :func:`restore`
refuses a file another OS user could have written.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import pickle
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.s3.models import FakeBucket, FakeKey, s3_backends
from moto.sqs.models import Message, Queue, sqs_backends
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import get_backend as stepfunctions_backend

from taskrail.local.preflight import LocalUpRefused
from taskrail.local.region import ACCOUNT_ID, PARTITION, REGION
from taskrail.local.services.dynamodbstreams import add_stream_listener, remove_stream_listener
from taskrail.local.services.patching import Check, Patch, Source
from taskrail.local.services.stepfunctions_express import EXECUTION_INIT

__all__ = [
    "EXECUTIONS_FILE",
    "PATCHES",
    "SNAPSHOT_FILE",
    "Autosave",
    "RestoredExecution",
    "SnapshotRefused",
    "Summary",
    "archive_executions",
    "restore",
    "restore_executions",
    "snapshot",
]

log = logging.getLogger("taskrail.local.persistence")

SNAPSHOT_FILE: Final = "moto-state.pickle"
#: The executions' records, kept for reading (jq): moto cannot be given finished executions back.
EXECUTIONS_FILE: Final = "executions.json"
EXECUTIONS_KEPT: Final = 2000
FORMAT: Final = 1
_ATTEMPTS: Final = 5  # a table written while it is pickled raises "changed size during iteration": again


class SnapshotRefused(LocalUpRefused):
    """The snapshot cannot be loaded (not this format or moto, or writable by another OS user)."""


@dataclass
class Summary:
    """What a snapshot held, or what a restore put back (and what it left out, with the reason)."""

    items: int = 0
    objects: int = 0
    messages: int = 0
    skipped: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.items} items, {self.objects} objects, {self.messages} queue messages"
        return text + (f" (left out: {'; '.join(self.skipped)})" if self.skipped else "")


def _count_items(items: Any) -> int:
    return sum(len(v) if isinstance(v, dict) else 1 for v in items.values())


def _capture() -> tuple[dict[str, Any], Summary]:
    import moto

    summary = Summary()
    tables = {}
    for name, table in dynamodb_backends[ACCOUNT_ID][REGION].tables.items():
        tables[name] = {"key_schema": table.schema, "items": table.items}
        summary.items += _count_items(table.items)
    buckets = {}
    for name, bucket in s3_backends[ACCOUNT_ID][PARTITION].buckets.items():
        if bucket.region_name == REGION:
            buckets[name] = bucket.keys
            summary.objects += len(bucket.keys)
    queues = {}
    for name, queue in sqs_backends[ACCOUNT_ID][REGION].queues.items():
        with queue._messages_lock:
            queues[name] = list(queue._messages)
        summary.messages += len(queues[name])
    state = {"format": FORMAT, "moto": moto.__version__, "dynamodb": tables, "s3": buckets, "sqs": queues}
    return state, summary


def snapshot(path: Path) -> Summary:
    """Write moto's data to ``path`` (atomically: a crash mid-write leaves the previous snapshot)."""
    for attempt in range(_ATTEMPTS):
        state, summary = _capture()
        try:
            data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
            break
        except RuntimeError:
            if attempt == _ATTEMPTS - 1:
                raise
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)
    return summary


class Autosave:
    """A snapshot every ``every`` seconds while tables are written (none while idle), so that a process that is
    killed outright, rather than stopped, loses at most that much."""

    def __init__(self, path: Path, every: float) -> None:
        self._path, self._every = path, every
        self._dirty, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-autosave", daemon=True)

    def start(self) -> Autosave:
        add_stream_listener(self._dirty.set)
        self._thread.start()
        return self

    def stop(self) -> None:
        remove_stream_listener(self._dirty.set)
        self._stop.set()
        self._thread.join(timeout=60)

    def save_if_written(self) -> bool:
        """One period's work: a snapshot if a table was written since the last one; whether one was written."""
        if not self._dirty.is_set():
            return False
        self._dirty.clear()
        snapshot(self._path)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.save_if_written()
            except Exception:
                log.exception("the periodic snapshot to %s failed", self._path)


def archive_executions(stepfunctions: Any, state_machine_arns: list[str], path: Path) -> int:
    """Add each execution (DescribeExecution and its history) to the archive at ``path``, by ARN, the latest
    :data:`EXECUTIONS_KEPT` kept; how many this stack had. Written 0600, atomically."""
    try:
        archived = {e["execution"]["executionArn"]: e for e in json.loads(path.read_text())}
    except (OSError, ValueError, KeyError, TypeError):
        archived = {}
    count = 0
    for arn in state_machine_arns:
        if stepfunctions.describe_state_machine(stateMachineArn=arn).get("type") == "EXPRESS":
            continue  # AWS keeps no Express execution to list or describe (their record is CloudWatch Logs)
        for page in stepfunctions.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for listed in page["executions"]:
                execution = stepfunctions.describe_execution(executionArn=listed["executionArn"])
                events = [
                    event
                    for history in stepfunctions.get_paginator("get_execution_history").paginate(
                        executionArn=listed["executionArn"]
                    )
                    for event in history["events"]
                ]
                execution.pop("ResponseMetadata", None)
                archived[listed["executionArn"]] = {"execution": execution, "events": events}
                count += 1
    kept = sorted(archived.values(), key=lambda e: str(e["execution"].get("startDate", "")))[-EXECUTIONS_KEPT:]
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(file.fileno(), 0o600)
        json.dump(kept, file, default=str)
    partial.replace(path)
    return count


def _check_owner(path: Path) -> None:
    for checked in (path, path.parent):
        info = checked.stat()
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise SnapshotRefused(
                f"{checked} is writable by another OS user (or not yours): a snapshot is code to load, so it is "
                "not loaded (chmod go-w, or start without --state-dir)"
            )


def restore(path: Path) -> Summary:
    """Put the data of the snapshot at ``path`` back into the provisioned (empty) resources of the same names."""
    import moto

    _check_owner(path)
    state = pickle.loads(path.read_bytes())
    if state.get("format") != FORMAT or state.get("moto") != moto.__version__:
        raise SnapshotRefused(
            f"{path} was written by another version (format {state.get('format')}, moto {state.get('moto')}; "
            f"this stack: format {FORMAT}, moto {moto.__version__}): move it away to start empty"
        )
    summary = Summary()
    tables = dynamodb_backends[ACCOUNT_ID][REGION].tables
    for name, saved in state["dynamodb"].items():
        table = tables.get(name)
        if table is None or table.schema != saved["key_schema"]:
            summary.skipped.append(f"table {name}: " + ("not in the template" if table is None else "key changed"))
            continue
        table.items = saved["items"]
        summary.items += _count_items(table.items)
    buckets = s3_backends[ACCOUNT_ID][PARTITION].buckets
    for name, keys in state["s3"].items():
        if name not in buckets:
            summary.skipped.append(f"bucket {name}: not in the template")
            continue
        buckets[name].keys = keys
        summary.objects += len(keys)
    queues = sqs_backends[ACCOUNT_ID][REGION].queues
    for name, messages in state["sqs"].items():
        queue = queues.get(name)
        if queue is None:
            summary.skipped.append(f"queue {name}: not in the template")
            continue
        for message in messages:
            message.visible_at = 0.0  # in flight at the stop: visible again, as after its visibility timeout
        with queue._messages_lock:
            queue._messages = list(messages)
            queue._messages_lock.notify_all()
        summary.messages += len(messages)
    return summary


FINISHED: Final = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
#: Why a restored execution cannot be redriven (DescribeExecution's redriveStatusReason, RedriveExecution's error).
NOT_REDRIVABLE_RESTORED: Final = (
    "Execution was restored from a snapshot after a restart of the local stack: its run cannot be resumed locally "
    "(taskrail replay starts a new execution)"
)


def _moment(text: Any) -> datetime.datetime | None:
    """A time as the archive holds it (``str(datetime)``, botocore's parse), back to a datetime."""
    if text in (None, ""):
        return None
    return datetime.datetime.fromisoformat(str(text))


class RestoredExecution(Execution):
    """A finished execution as DescribeExecution and GetExecutionHistory answered at the stop: moto's Execution,
    never started, whose history is the archived one."""

    restored_reason = NOT_REDRIVABLE_RESTORED  # services/stepfunctions_redrive.py refuses to redrive it

    def __init__(self, archived: dict[str, Any], state_machine: Any, account_id: str, region: str) -> None:
        described = archived["execution"]
        super().__init__(
            name=described["name"],
            sm_type=state_machine.sm_type,
            role_arn=state_machine.roleArn,
            exec_arn=described["executionArn"],
            account_id=account_id,
            region_name=region,
            state_machine=state_machine,
            start_date=datetime.datetime.fromisoformat(str(described["startDate"])),
            cloud_watch_logging_session=None,
            input_data=described.get("input") or "{}",
            trace_header=None,
            activity_store={},
        )
        self.exec_status = ExecutionStatus(described["status"])
        self.stop_date = _moment(described.get("stopDate"))
        self.output = json.loads(described["output"]) if described.get("output") is not None else None
        self.error, self.cause = described.get("error"), described.get("cause")
        self.redrive_count = int(described.get("redriveCount") or 0)
        self.redrive_date = _moment(described.get("redriveDate"))
        self._events = [{**event, "timestamp": _moment(event["timestamp"])} for event in archived["events"]]

    def to_history_output(self) -> Any:
        return {"events": [dict(event) for event in self._events]}


def restore_executions(path: Path) -> int:
    """Give the finished executions of the archive at ``path`` back to moto, into the provisioned state machines of
    the same ARN (an execution already known, or of a machine the template no longer has, is left out); how many."""
    try:
        archived = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0
    backend = stepfunctions_backend(ACCOUNT_ID, REGION)
    machines = {machine.arn: machine for machine in backend.state_machines}
    count = 0
    for entry in sorted(archived, key=lambda e: str(e["execution"].get("startDate", ""))):
        described = entry["execution"]
        machine = machines.get(described.get("stateMachineArn"))
        if machine is None or described.get("status") not in FINISHED:
            continue
        if any(e.execution_arn == described["executionArn"] for e in machine.executions):
            continue
        # moto's parser backend keeps its own Execution objects in this list, typed as the other backend's
        machine.executions.append(RestoredExecution(entry, machine, ACCOUNT_ID, REGION))  # type: ignore[arg-type]
        count += 1
    return count


_TABLE: Final = "moto.dynamodb.models.table.Table"
STATE_SNAPSHOT: Final = Patch(
    "moto's data in a snapshot (no change to moto)",
    depends=(
        Source(
            f"{_TABLE}.__init__", lambda: Table.__init__, ("self.items = defaultdict(dict)", "self.schema = schema")
        ),
        Source(  # restored items make no stream record: the stream is appended to by the writes only
            f"{_TABLE}.put_item",
            lambda: Table.put_item,
            ("self.items[hash_value][range_value] = item", "self.stream_shard.add(current, item)"),
        ),
        Source(
            "moto.s3.models.FakeBucket.__init__", lambda: FakeBucket.__init__, ("self.keys = _VersionedKeyStore()",)
        ),
        Check(
            "moto.s3.models.FakeKey.__getstate__",
            lambda: "__getstate__" in vars(FakeKey) and "__setstate__" in vars(FakeKey),
            "FakeKey pickles its value itself",
        ),
        Source(
            "moto.sqs.models.Queue.__init__",
            lambda: Queue.__init__,
            ("self._messages: list[Message] = []", "self._messages_lock = Condition()"),
        ),
        Source("moto.sqs.models.Message.visible", lambda: vars(Message)["visible"].fget, ("self.visible_at",)),
        EXECUTION_INIT,  # a restored execution is moto's own, built as StartExecution builds one, never started
        Source(  # GetExecutionHistory answers what to_history_output gives; DescribeExecution reads the fields
            "moto.stepfunctions.parser.models.StepFunctionsParserBackend.get_execution_history",
            lambda: StepFunctionsParserBackend.get_execution_history,
            ("execution.to_history_output()",),
        ),
        Source(
            "moto.stepfunctions.parser.backend.execution.Execution.to_describe_output",
            lambda: Execution.to_describe_output,
            ("status=self.exec_status", "stopDate=self.stop_date", "self.error", "self.cause"),
        ),
        Source(  # the executions of a state machine are a list moto searches by ARN
            "moto.stepfunctions.models.StepFunctionBackend.describe_execution",
            lambda: StepFunctionBackend.describe_execution,
            ("for x in state_machine.executions if x.execution_arn == execution_arn",),
        ),
    ),
)

PATCHES: Final = (STATE_SNAPSHOT,)
