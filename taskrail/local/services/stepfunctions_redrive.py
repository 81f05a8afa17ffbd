"""AWS Step Functions RedriveExecution, which moto 5.2.5 does not have (botocore's model does).

AWS ("RedriveExecution", Step Functions API Reference; "Redriving executions", Developer Guide): a FAILED,
TIMED_OUT or ABORTED execution of a STANDARD state machine that stopped less than 14 days ago can be redriven.
The redrive keeps the execution ARN, the definition and the input; it "continues the failed execution from the
unsuccessful step and uses the same input", does not rerun the steps that succeeded, appends an
``ExecutionRedriven`` event (``executionRedrivenEventDetails.redriveCount``) to the same history, and counts
``redriveCount`` / ``redriveDate`` in DescribeExecution and ListExecutions. Any other execution is refused with
``ExecutionNotRedrivable``; an unknown one with ``ExecutionDoesNotExist``.

Locally, :func:`redrive` gives the execution a new :class:`RedriveWorker`: it shares the first run's event
manager (the ids go on), its variables and its mock test case, adds ``ExecutionRedriven``, and runs moto's
program from the top-level state that was entered and never exited, with the input that state was entered
with (a Fail state too: redriving an execution that ended in a Fail state fails it again, as on AWS). The
context object carries ``$$.Execution.RedriveCount`` (0 on a first run) and ``RedriveTime`` after a redrive.

Known deviation (docs/LOCAL-FIDELITY.md): a failed Parallel or inline Map state is rerun whole; AWS reruns only
its failed branches or iterations.
"""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable
from typing import Any, Final

from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import AWSError
from moto.stepfunctions.parser.api import (
    ExecutionAbortedEventDetails,
    ExecutionRedrivenEventDetails,
    ExecutionStatus,
    ExecutionTimedOutEventDetails,
    HistoryEventType,
)
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.component.program.program import Program
from moto.stepfunctions.parser.asl.eval import states as _states
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.backend.execution_worker_comm import ExecutionWorkerCommunication
from moto.stepfunctions.parser.utils import TMP_THREADS
from moto.stepfunctions.responses import StepFunctionResponse

from taskrail.local.services import stepfunctions_aliases
from taskrail.local.services.patching import Check, Patch, Signature, Source, is_patched, original, patch, unpatch

__all__ = [
    "PATCHES",
    "REDRIVE_WINDOW",
    "ExecutionNotRedrivable",
    "RedriveWorker",
    "install_redrive",
    "redrive",
    "redrive_fields",
    "redrive_listeners",
    "uninstall_redrive",
]

_event_details: Any = EventDetails  # a total TypedDict in moto's stubs; AWS's history events carry one member

#: "Restarts unsuccessful executions of Standard workflows that didn't complete successfully in the last 14 days".
REDRIVE_WINDOW: Final = datetime.timedelta(days=14)
REDRIVABLE_STATUSES: Final = frozenset({ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.ABORTED})
_SFN: Final = "moto.stepfunctions.parser"
_lock = threading.RLock()

#: Called with the execution after a redrive set it RUNNING (the status-change events hook in here).
redrive_listeners: list[Callable[[Execution], None]] = []


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _aware(moment: Any) -> datetime.datetime | None:
    """moto stores some stop dates naive (StopExecution) or as ISO text: read them as UTC."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.datetime.fromisoformat(moment)
    if isinstance(moment, (int, float)):
        moment = datetime.datetime.fromtimestamp(moment, tz=datetime.UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def redrive_count(execution: Any) -> int:
    return int(getattr(execution, "redrive_count", 0))


def not_redrivable_reason(execution: Any, now: datetime.datetime | None = None) -> str | None:
    """AWS's ``redriveStatusReason`` (DescribeExecution API reference) when the execution cannot be redriven."""
    status = execution.exec_status
    if status not in REDRIVABLE_STATUSES:
        # recorded AWS responses read "Execution is SUCCEEDED and cannot be redriven" (no full stop)
        return f"Execution is {ExecutionStatus(status).value} and cannot be redriven"
    restored = getattr(execution, "restored_reason", None)  # persistence.RestoredExecution: a record, not a run
    if restored:
        return str(restored)
    stop = _aware(execution.stop_date)
    if stop is not None and (now or _now()) - stop > REDRIVE_WINDOW:
        return "Execution redrivable period exceeded"
    return None


def redrive_fields(execution: Any) -> dict[str, Any]:
    """The redrive members of DescribeExecution for a STANDARD execution."""
    fields: dict[str, Any] = {"redriveCount": redrive_count(execution)}
    if getattr(execution, "redrive_date", None) is not None:
        fields["redriveDate"] = execution.redrive_date
    reason = not_redrivable_reason(execution)
    fields["redriveStatus"] = "REDRIVABLE" if reason is None else "NOT_REDRIVABLE"
    if reason is not None:
        fields["redriveStatusReason"] = reason
    return fields


def _resume_point(execution: Execution, program: Program) -> tuple[str, Any]:
    """The top-level state entered and never exited, and its input; else StartAt with the execution input."""
    top_level = set(program.states.states)
    env = execution.exec_worker.env if execution.exec_worker else None
    events = env.event_manager.get_event_history() if env is not None else []
    open_state: tuple[str, Any] | None = None
    for event in events:
        entered = event.get("stateEnteredEventDetails")
        exited = event.get("stateExitedEventDetails")
        if entered and entered.get("name") in top_level:
            open_state = (entered["name"], json.loads(entered.get("input") or "null"))
        elif exited and open_state and exited.get("name") == open_state[0]:
            open_state = None
    if open_state is not None:
        return open_state
    return program.start_at.start_at_name, execution.input_data


_TERMINAL_EVENTS: Final = frozenset(
    {
        HistoryEventType.ExecutionFailed,
        HistoryEventType.ExecutionAborted,
        HistoryEventType.ExecutionTimedOut,
        HistoryEventType.ExecutionSucceeded,
    }
)


def _continued_history(first: EventManager, logging_session: Any) -> EventManager:
    """The first run's history, copied, with its event ids going on. A copy: moto's first program thread may
    still be blocked in a state of an aborted or timed-out run and would write into its own history later."""
    manager = EventManager(cloud_watch_logging_session=logging_session)
    with first._mutex:
        setattr(manager, "_history_event_list", list(first._history_event_list))  # noqa: B010 - Final in moto
        manager._event_id_gen._next_id = first._event_id_gen._next_id
    return manager


def _close_first_run(env: Environment, stopped_as: ExecutionStatus) -> None:
    """moto writes ExecutionAborted / ExecutionTimedOut only when the blocked state returns; AWS records it when
    the execution stops. A redrive before that point writes it first, so the history reads as on AWS."""
    events = env.event_manager.get_event_history()
    if events and events[-1]["type"] in _TERMINAL_EVENTS:
        return
    if stopped_as == ExecutionStatus.ABORTED:
        details = _event_details(executionAbortedEventDetails=ExecutionAbortedEventDetails())
        env.event_manager.add_event(env.event_history_context, HistoryEventType.ExecutionAborted, details)
    elif stopped_as == ExecutionStatus.TIMED_OUT:
        details = _event_details(executionTimedOutEventDetails=ExecutionTimedOutEventDetails())
        env.event_manager.add_event(env.event_history_context, HistoryEventType.ExecutionTimedOut, details)


class _FinishedRun(ExecutionWorkerCommunication):
    """The first run's worker once redriven: its late end must not overwrite the redriven run's status."""

    def terminated(self) -> None:
        return None


class RedriveWorker(ExecutionWorker):
    """Runs an execution again from ``resume_at`` with ``resume_input``, on the first run's history."""

    def __init__(
        self,
        first: ExecutionWorker,
        execution: Execution,
        redrive_date: datetime.datetime,
        stopped_as: ExecutionStatus,
    ) -> None:
        super().__init__(
            evaluation_details=first._evaluation_details,
            exec_comm=BaseExecutionWorkerCommunication(execution),
            cloud_watch_logging_session=first._cloud_watch_logging_session,
            activity_store=first._activity_store,
            mock_test_case=first._mock_test_case,
        )
        self._first_env: Any = first.env
        self._execution = execution
        self._redrive_date = redrive_date
        self._stopped_as = stopped_as

    def _get_evaluation_environment(self) -> Environment:
        env = super()._get_evaluation_environment()
        first = self._first_env
        env.event_manager = _continued_history(first.event_manager, first.cloud_watch_logging_session)
        setattr(env, "variable_store", first.variable_store)  # noqa: B010 - Final in moto; variables survive
        context = EventHistoryContext(previous_event_id=first.event_history_context.source_event_id)
        setattr(env, "event_history_context", context)  # noqa: B010 - Final in moto
        execution_data = env.states.context_object.context_object_data["Execution"]
        execution_data["RedriveCount"] = redrive_count(self._execution)  # type: ignore[typeddict-unknown-key]
        execution_data["RedriveTime"] = self._redrive_date.isoformat()  # type: ignore[typeddict-unknown-key]
        return env

    def _execution_logic(self) -> None:
        program: Program = self._get_evaluation_entrypoint()  # type: ignore[assignment]
        env = self._get_evaluation_environment()
        self.env = env
        _close_first_run(env, self._stopped_as)
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=_event_details(
                executionRedrivenEventDetails=ExecutionRedrivenEventDetails(redriveCount=redrive_count(self._execution))
            ),
        )
        state_name, state_input = _resume_point(self._execution, program)
        env.states.reset(state_input)
        # Program.eval, but from the resume state (it would set env.next_state_name to StartAt)
        timeout = program.timeout_seconds.timeout_seconds if program.timeout_seconds else None
        env.next_state_name = state_name
        thread = threading.Thread(target=EvalComponent.eval, args=(program, env), daemon=True)
        TMP_THREADS.append(thread)
        thread.start()
        thread.join(timeout=timeout)
        if thread.is_alive():
            env.set_timed_out()
        self._execution_communication.terminated()


def redrive(backend: Any, execution_arn: str, client_token: str | None = None) -> Execution:
    """RedriveExecution on moto's Step Functions parser backend; returns the execution (RUNNING again)."""
    execution: Execution = backend.describe_execution(execution_arn)  # ExecutionDoesNotExist / InvalidArn
    with _lock:
        if str(execution.sm_type) != "STANDARD":
            raise ExecutionNotRedrivable(f"Execution of type {execution.sm_type} cannot be redriven")
        reason = not_redrivable_reason(execution)
        if reason is not None:
            raise ExecutionNotRedrivable(reason)
        first = execution.exec_worker
        if first is None or first.env is None:
            raise ExecutionNotRedrivable("Execution has not started")
        redrive_date = _now()
        stopped_as = ExecutionStatus(execution.exec_status)
        first._execution_communication = _FinishedRun()  # type: ignore[misc]
        execution.redrive_count = redrive_count(execution) + 1  # type: ignore[attr-defined]
        execution.redrive_date = redrive_date  # type: ignore[attr-defined]
        worker = RedriveWorker(first, execution, redrive_date, stopped_as)
        execution.exec_worker = worker
        execution.exec_status = ExecutionStatus.RUNNING
        execution.stop_date = None
        execution.error = None
        execution.cause = None
        execution.output = None
    for listener in list(redrive_listeners):
        listener(execution)
    worker.start()
    return execution


# --------------------------------------------------------------------------------------------------
# The API: RedriveExecution, and the redrive members of DescribeExecution / ListExecutions
# --------------------------------------------------------------------------------------------------


def _redrive_execution(self: StepFunctionResponse) -> ActionResult:
    execution = redrive(self.stepfunction_backend, self._get_param("executionArn"), self._get_param("clientToken"))
    return ActionResult({"redriveDate": execution.redrive_date})  # type: ignore[attr-defined]


def _describe_execution(self: StepFunctionResponse) -> ActionResult:
    result = original(StepFunctionResponse, "describe_execution")(self)
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    if isinstance(execution, Execution) and str(execution.sm_type) == "STANDARD":
        result.result.update(redrive_fields(execution))  # type: ignore[attr-defined]
    result.result.update(stepfunctions_aliases.execution_fields(execution))  # type: ignore[attr-defined]
    return result


def _list_executions(self: StepFunctionResponse) -> ActionResult:
    """Adds each item's ``redriveCount`` / ``redriveDate`` and applies ``redriveFilter`` (REDRIVEN: redriven at
    least once; NOT_REDRIVEN: never), as the ListExecutions API reference describes."""
    result = original(StepFunctionResponse, "list_executions")(self)
    redrive_filter = self._get_param("redriveFilter")
    backend = self.stepfunction_backend
    items = []
    for item in result.result["executions"]:  # type: ignore[attr-defined]
        execution = backend.describe_execution(item["executionArn"])
        count = redrive_count(execution)
        if (redrive_filter == "REDRIVEN" and count == 0) or (redrive_filter == "NOT_REDRIVEN" and count > 0):
            continue
        item["redriveCount"] = count
        item.update(stepfunctions_aliases.execution_fields(execution))
        if getattr(execution, "redrive_date", None) is not None:
            item["redriveDate"] = execution.redrive_date  # type: ignore[attr-defined]
        items.append(item)
    result.result["executions"] = items  # type: ignore[attr-defined]
    return result


def _first_run_context(self: ExecutionWorker) -> Environment:
    """``$$.Execution.RedriveCount`` is 0 on a first run ("Context object", Step Functions Developer Guide)."""
    env = original(ExecutionWorker, "_get_evaluation_environment")(self)
    env.states.context_object.context_object_data["Execution"].setdefault("RedriveCount", 0)
    return env


def install_redrive() -> None:
    with _lock:
        if not hasattr(StepFunctionResponse, "redrive_execution"):
            StepFunctionResponse.redrive_execution = _redrive_execution  # type: ignore[attr-defined]
        if not is_patched(StepFunctionResponse, "describe_execution"):
            patch(StepFunctionResponse, "describe_execution", _describe_execution)
        if not is_patched(StepFunctionResponse, "list_executions"):
            patch(StepFunctionResponse, "list_executions", _list_executions)
        if not is_patched(ExecutionWorker, "_get_evaluation_environment"):
            patch(ExecutionWorker, "_get_evaluation_environment", _first_run_context)


def uninstall_redrive() -> None:
    with _lock:
        if vars(StepFunctionResponse).get("redrive_execution") is _redrive_execution:
            del StepFunctionResponse.redrive_execution  # type: ignore[attr-defined]
        for owner, name in (
            (StepFunctionResponse, "describe_execution"),
            (StepFunctionResponse, "list_executions"),
            (ExecutionWorker, "_get_evaluation_environment"),
        ):
            if is_patched(owner, name):
                unpatch(owner, name)


def _moto_lacks_redrive() -> bool:
    return vars(StepFunctionResponse).get("redrive_execution") in (None, _redrive_execution) and not hasattr(
        _backend_class(), "redrive_execution"
    )


def _backend_class() -> type:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    return StepFunctionsParserBackend


REDRIVE: Final = Patch(
    "RedriveExecution, and redriveCount/redriveDate/redriveStatus",
    depends=(
        Check(
            "moto.stepfunctions.responses.StepFunctionResponse.redrive_execution",
            _moto_lacks_redrive,
            "exists in moto now: compare it with taskrail's and drop ours",
        ),
        Signature(
            f"{_SFN}.backend.execution_worker.ExecutionWorker.__init__ (redrive)",
            lambda: ExecutionWorker.__init__,
            (
                "self",
                "evaluation_details",
                "exec_comm",
                "cloud_watch_logging_session",
                "activity_store",
                "mock_test_case",
            ),
        ),
        Source(
            f"{_SFN}.backend.execution_worker.ExecutionWorker._execution_logic",
            lambda: ExecutionWorker._execution_logic,
            ("self.env = self._get_evaluation_environment()", "program.eval(self.env)", "terminated()"),
        ),
        Source(
            f"{_SFN}.asl.component.program.program.Program.eval",
            lambda: Program.eval,
            ("env.next_state_name = self.start_at.start_at_name", "super().eval", "env.set_timed_out()"),
        ),
        Source(
            f"{_SFN}.asl.eval.event.event_manager.EventManager.__init__",
            lambda: EventManager.__init__,
            (
                "self._mutex = threading.Lock()",
                "self._event_id_gen = EventIdGenerator()",
                "self._history_event_list = []",
            ),
        ),
        Source(
            f"{_SFN}.asl.eval.event.event_manager.EventIdGenerator.get",
            lambda: __import__(f"{_SFN}.asl.eval.event.event_manager", fromlist=["x"]).EventIdGenerator.get,
            ("next_id = self._next_id",),
        ),
        Source(
            f"{_SFN}.backend.execution_worker.ExecutionWorker._execution_logic (comm)",
            lambda: ExecutionWorker._execution_logic,
            ("self._execution_communication.terminated()",),
        ),
        Source(
            f"{_SFN}.asl.component.program.program.Program._eval_body",
            lambda: Program._eval_body,
            ("self._get_state(env.next_state_name)",),
        ),
        Source(
            f"{_SFN}.asl.eval.environment.Environment.__init__ (redrive)",
            lambda: Environment.__init__,
            ("self.event_manager = EventManager(", "self.variable_store = variable_store or VariableStore()"),
        ),
        Source(
            f"{_SFN}.backend.execution.BaseExecutionWorkerCommunication._reflect_execution_status",
            lambda: BaseExecutionWorkerCommunication._reflect_execution_status,
            ("self.execution.exec_worker.env.program_state()",),
        ),
        Source(
            f"{_SFN}.asl.eval.states.States.__init__",
            lambda: _states.States.__init__,
            ("self.context_object = ContextObject(context_object=context)",),
        ),
        Source(
            f"{_SFN}.asl.eval.states.ContextObject.__init__",
            lambda: _states.ContextObject.__init__,
            ("self.context_object_data = context_object",),
        ),
        Source(
            "moto.stepfunctions.responses.StepFunctionResponse.describe_execution",
            lambda: original(StepFunctionResponse, "describe_execution"),
            ("return ActionResult(response)",),
        ),
        Source(
            "moto.stepfunctions.responses.StepFunctionResponse.list_executions",
            lambda: original(StepFunctionResponse, "list_executions"),
            ('response = {"executions": executions, "nextToken": next_token}',),
        ),
        Signature(
            f"{_SFN}.backend.execution_worker.ExecutionWorker._get_evaluation_environment",
            lambda: original(ExecutionWorker, "_get_evaluation_environment"),
            ("self",),
        ),
    ),
    install=install_redrive,
    uninstall=uninstall_redrive,
)

PATCHES: Final = (REDRIVE,)
