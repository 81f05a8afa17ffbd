"""AWS Step Functions execution status-change events on the default EventBridge bus (moto sends none).

AWS ("Automating Step Functions event delivery with EventBridge", Step Functions Developer Guide;
https://docs.aws.amazon.com/step-functions/latest/dg/eventbridge-integration.html): for Standard workflows, every
execution status change is sent, best effort, to the account's default bus as an event with source ``aws.states``,
detail-type ``Step Functions Execution Status Change``, ``resources`` = [execution ARN], and a detail of
executionArn, stateMachineArn, name, status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED), startDate and
stopDate (epoch milliseconds), input, output, inputDetails, outputDetails, error, cause, and the redrive members
redriveCount, redriveDate, redriveStatus, redriveStatusReason. A redrive's RUNNING is sent too.

Locally each change is put on moto's default bus of the execution's account and region, so rules with that
pattern deliver to their targets (moto's own target kinds, plus those of :mod:`taskrail.local.services.events`).
Hook points: ``Execution.start`` (RUNNING, before the execution thread starts), the worker's end
(``BaseExecutionWorkerCommunication.terminated``), the StopExecution response (ABORTED at once) and a redrive
(:data:`stepfunctions_redrive.redrive_listeners`). Each (status, redriveCount) is sent once per execution.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Final

from moto.events.models import EventsBackend
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.responses import StepFunctionResponse

from taskrail.local.services import stepfunctions_redrive
from taskrail.local.services.patching import Patch, Signature, Source, is_patched, original, patch, unpatch

__all__ = [
    "DETAIL_TYPE",
    "PATCHES",
    "SOURCE",
    "install_status_events",
    "status_change_detail",
    "uninstall_status_events",
]

LOG = logging.getLogger(__name__)
SOURCE: Final = "aws.states"
DETAIL_TYPE: Final = "Step Functions Execution Status Change"
_lock = threading.Lock()


def _epoch_millis(moment: Any) -> int | None:
    aware = stepfunctions_redrive._aware(moment)
    return None if aware is None else int(aware.timestamp() * 1000)


def status_change_detail(execution: Execution) -> dict[str, Any]:
    status = str(execution.exec_status.value if execution.exec_status else "RUNNING")
    succeeded = status == "SUCCEEDED"
    output = execution.output
    redrive = stepfunctions_redrive.redrive_fields(execution)
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine_arn,
        "name": execution.name,
        "status": status,
        "startDate": _epoch_millis(execution.start_date),
        "stopDate": None if status == "RUNNING" else _epoch_millis(execution.stop_date),
        "input": json.dumps(execution.input_data, separators=(",", ":")),
        "output": (output if isinstance(output, str) else json.dumps(output, separators=(",", ":")))
        if succeeded
        else None,
        "inputDetails": {"included": True},
        "outputDetails": {"included": True} if succeeded else None,
        "error": execution.error,
        "cause": execution.cause,
        "redriveCount": redrive["redriveCount"],
        "redriveDate": _epoch_millis(redrive.get("redriveDate")),
        "redriveStatus": redrive["redriveStatus"],
        "redriveStatusReason": redrive.get("redriveStatusReason"),
    }


def publish_status_change(execution: Execution) -> None:
    """Best effort, as on AWS: a failure to deliver is logged, never raised into the interpreter."""
    try:
        if str(execution.sm_type) != "STANDARD" or execution.exec_status is None:
            return
        key = (str(execution.exec_status.value), stepfunctions_redrive.redrive_count(execution))
        with _lock:
            sent: set[tuple[str, int]] = execution.__dict__.setdefault("_taskrail_status_events", set())
            if key in sent:
                return
            sent.add(key)
        from moto.events.models import events_backends

        backend: EventsBackend = events_backends[execution.account_id][execution.region_name]
        backend.put_events(
            [
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(status_change_detail(execution)),
                    "Resources": [execution.exec_arn],
                    "EventBusName": "default",
                }
            ]
        )
    except Exception:
        LOG.exception("status-change event of %s not delivered", getattr(execution, "exec_arn", "?"))


def _start(self: Execution) -> None:
    """RUNNING is put on the bus before the execution's thread starts, so it precedes the terminal event.

    Publishing after ``Execution.start`` returned raced the thread: a machine that fails at once reached FAILED
    first, and the RUNNING event was then skipped as already sent (seen in CI). AWS sends both.
    """
    make_worker = self._get_start_execution_worker

    def worker_that_announces_running() -> Any:
        worker = make_worker()
        start_thread = worker.start

        def start() -> None:
            publish_status_change(self)  # exec_status is RUNNING by now (Execution.start sets it first)
            start_thread()

        worker.start = start  # type: ignore[method-assign]
        return worker

    self.__dict__["_get_start_execution_worker"] = worker_that_announces_running
    try:
        original(Execution, "start")(self)
    finally:
        self.__dict__.pop("_get_start_execution_worker", None)


def _terminated(self: BaseExecutionWorkerCommunication) -> None:
    original(BaseExecutionWorkerCommunication, "terminated")(self)
    publish_status_change(self.execution)


def _stop_execution(self: StepFunctionResponse) -> Any:
    result = original(StepFunctionResponse, "stop_execution")(self)
    try:
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    except Exception:
        return result
    if isinstance(execution, Execution) and str(execution.exec_status.value) == "ABORTED":
        publish_status_change(execution)
    return result


def install_status_events() -> None:
    for owner, name, replacement in (
        (Execution, "start", _start),
        (BaseExecutionWorkerCommunication, "terminated", _terminated),
        (StepFunctionResponse, "stop_execution", _stop_execution),
    ):
        if not is_patched(owner, name):
            patch(owner, name, replacement)
    if publish_status_change not in stepfunctions_redrive.redrive_listeners:
        stepfunctions_redrive.redrive_listeners.append(publish_status_change)


def uninstall_status_events() -> None:
    for owner, name in (
        (Execution, "start"),
        (BaseExecutionWorkerCommunication, "terminated"),
        (StepFunctionResponse, "stop_execution"),
    ):
        if is_patched(owner, name):
            unpatch(owner, name)
    if publish_status_change in stepfunctions_redrive.redrive_listeners:
        stepfunctions_redrive.redrive_listeners.remove(publish_status_change)


STATUS_EVENTS: Final = Patch(
    "execution status-change events on the default bus",
    depends=(
        Signature(
            "moto.stepfunctions.parser.backend.execution.Execution.start",
            lambda: original(Execution, "start"),
            ("self",),
        ),
        Source(
            "moto.stepfunctions.parser.backend.execution.Execution.start (status)",
            lambda: original(Execution, "start"),
            (
                "self.exec_worker = self._get_start_execution_worker()",
                "self.exec_status = ExecutionStatus.RUNNING\n        self.exec_worker.start()",
            ),
        ),
        Source(
            "moto.stepfunctions.parser.backend.execution.BaseExecutionWorkerCommunication.terminated",
            lambda: original(BaseExecutionWorkerCommunication, "terminated"),
            ("self._reflect_execution_status()",),
        ),
        Source(
            "moto.stepfunctions.responses.StepFunctionResponse.stop_execution",
            lambda: original(StepFunctionResponse, "stop_execution"),
            ('self._get_param("executionArn")', "stop_execution(arn)"),
        ),
        Signature(
            "moto.events.models.EventsBackend.put_events",
            lambda: original(EventsBackend, "put_events"),  # moto's own, under services/events.py's limits
            ("self", "events"),
        ),
        Source(
            "moto.events.models.EventsBackend.put_events (delivery)",
            lambda: original(EventsBackend, "put_events"),
            ('event.get("EventBusName")', 'event.get("Resources", [])', "rule.send_to_targets(event_msg)"),
        ),
    ),
    install=install_status_events,
    uninstall=uninstall_status_events,
)

PATCHES: Final = (STATUS_EVENTS,)
