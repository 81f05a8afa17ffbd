"""AWS Step Functions: what an EXPRESS state machine's executions are, and are not, on AWS (moto 5.2.5 serves them
as STANDARD ones).

- **Their ARN.** An Express execution is ``arn:<partition>:states:<region>:<account>:express:<stateMachine>:<name>:
  <uuid>`` (LocalStack's AWS-recorded snapshot ``test_sfn_api_express.snapshot.json``, StartSyncExecution's
  ``executionArn`` and the logged ``execution_arn``); moto names it ``...:execution:<stateMachine>:<name>``. The
  execution gets the Express form when moto builds it (``Execution.__init__``), so StartExecution answers it and
  the definition's ``$$.Execution.Id`` is it.
- **No API reads one.** DescribeExecution ("Executions of an EXPRESS state machine aren't supported by
  DescribeExecution"), GetExecutionHistory, StopExecution, RedriveExecution and DescribeStateMachineForExecution
  ("This API action is not supported by EXPRESS state machines", each API reference) refuse an Express ARN: AWS
  answers ``InvalidArn`` "Invalid Arn: 'Resource type not valid in this context: express'" for the first three
  (the same snapshot, ``test_start_async_describe_history_execution``), and the same check of the ARN's resource
  type answers the other two. A ``...:execution:...`` ARN naming an Express execution names nothing
  (``ExecutionDoesNotExist``, moto's own answer once the execution has the Express ARN).
- **No name idempotency.** "Idempotency is not automatically managed. Starting multiple workflows with the same
  name results in concurrent executions" (asynchronous Express, "Execution guarantees", Developer Guide); moto
  answers a STANDARD machine's (the running one, or ``ExecutionAlreadyExists``). Each start is a new execution.
- **No list.** ListExecutions of an EXPRESS state machine is ``StateMachineTypeNotSupported`` "This operation is
  not supported by this type of state machine" (the same snapshot; the ListExecutions API reference lists the
  error).
- **Logged to CloudWatch Logs instead.** An execution logs its history events to the log group of its state
  machine's ``loggingConfiguration`` at its level (``ALL``, ``ERROR``, ``FATAL``), without inputs and outputs unless
  ``includeExecutionData`` ("Logging using CloudWatch Logs", Developer Guide): moto 5.2.5 vendors LocalStack's
  delivery (``CloudWatchLoggingSession``) and passes ``None``; the session is made here from the state machine's
  configuration, for both types. Each log event is the JSON ``{id, previous_event_id, event_timestamp, type,
  execution_arn, details}``, the snapshot's ``end_event``.

The in-process platform (tests, the cost model) may look at the executions the emulator ran with
:func:`inspecting`: on the calling thread only, the refusals above are lifted, since the harness reads what AWS
would show in the execution's logs; nothing that reaches the emulator over HTTP is ever inside it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

from moto.core.exceptions import AWSError
from moto.logs.exceptions import ResourceNotFoundException as LogsResourceNotFound
from moto.stepfunctions.exceptions import InvalidArn
from moto.stepfunctions.models import StateMachine, StepFunctionBackend
from moto.stepfunctions.parser.asl.eval.event.logging import CloudWatchLoggingConfiguration, CloudWatchLoggingSession
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from taskrail.local.services.patching import Check, Patch, Signature, Source, is_patched, original, patch, unpatch

__all__ = [
    "EXPRESS",
    "EXPRESS_RESOURCE",
    "NOT_IN_CONTEXT",
    "PATCHES",
    "LogDelivery",
    "StateMachineTypeNotSupported",
    "express_arn",
    "inspecting",
    "install_express_semantics",
    "is_express_arn",
    "uninstall_express_semantics",
]

EXPRESS: Final = "EXPRESS"
EXPRESS_RESOURCE: Final = "express"
NOT_IN_CONTEXT: Final = "Invalid Arn: 'Resource type not valid in this context: express'"
TYPE_NOT_SUPPORTED: Final = "This operation is not supported by this type of state machine"

_inspecting = threading.local()


class StateMachineTypeNotSupported(AWSError):
    TYPE = "StateMachineTypeNotSupported"
    STATUS = 400


def is_express_arn(arn: str) -> bool:
    parts = str(arn).split(":")
    return len(parts) > 5 and parts[5] == EXPRESS_RESOURCE


def express_arn(execution_arn: str) -> str:
    """moto's ``...:execution:<machine>:<name>`` as AWS names an Express execution (``...:express:...:<uuid>``)."""
    head, _, rest = execution_arn.partition(":execution:")
    return f"{head}:{EXPRESS_RESOURCE}:{rest}:{uuid.uuid4()}"


@contextmanager
def inspecting() -> Iterator[None]:
    """On this thread, the emulator answers for Express executions as for Standard ones (the harness's view)."""
    before = getattr(_inspecting, "on", False)
    _inspecting.on = True
    try:
        yield
    finally:
        _inspecting.on = before


def _inspected() -> bool:
    return bool(getattr(_inspecting, "on", False))


class LogDelivery(CloudWatchLoggingSession):
    """moto's session, with a delivery that works: its own passes a dict as the event (moto's logs want
    ``timestamp`` and ``message``), reads a text timestamp as a datetime and catches botocore's error where the logs
    backend raises its own. Each event is one JSON line; ``event_timestamp`` in epoch milliseconds, as text."""

    _lock: Final = threading.Lock()

    def publish_history_log(self, history_log: Any) -> None:
        moment = _epoch_ms(history_log.get("event_timestamp"))
        record = {**history_log, "event_timestamp": str(moment), "redrive_count": "0"}
        if record.get("details") is None:
            record.pop("details", None)
        event = {"timestamp": moment, "message": json.dumps(record, default=str, separators=(",", ":"))}
        group, stream = self.configuration.log_group_name, self.configuration.log_stream_name
        with self._lock:
            try:
                self._logs_client.put_log_events(group, stream, [event])
            except LogsResourceNotFound:
                try:
                    self._logs_client.create_log_stream(group, stream)
                except LogsResourceNotFound:
                    return  # no such log group: AWS delivers nothing either
                self._logs_client.put_log_events(group, stream, [event])


def _epoch_ms(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    try:
        return int(datetime.fromisoformat(str(value)).timestamp() * 1000)
    except ValueError:
        return int(time.time() * 1000)


def _logging_session(exec_arn: str, state_machine: Any) -> CloudWatchLoggingSession | None:
    configuration = getattr(state_machine, "loggingConfiguration", None) or {}
    if not configuration.get("destinations"):
        return None
    configuration = {"includeExecutionData": False, **configuration}
    logging = CloudWatchLoggingConfiguration.from_logging_configuration(state_machine.arn, configuration)  # type: ignore[arg-type]
    if logging is None:
        return None
    logging.log_stream_name = f"states/{state_machine.name}"  # type: ignore[misc]  # moto's has the ARN's colons, which a stream refuses
    return LogDelivery(exec_arn, logging)


def _execution_init(self: Execution, *args: Any, **kwargs: Any) -> None:
    machine = kwargs.get("state_machine")
    exec_arn = kwargs.get("exec_arn")
    if machine is not None and isinstance(exec_arn, str):
        if getattr(machine, "type", None) == EXPRESS and ":execution:" in exec_arn:
            kwargs["exec_arn"] = exec_arn = express_arn(exec_arn)
            kwargs["sm_type"] = EXPRESS  # moto's is always STANDARD: no status-change events, no redrive
        if kwargs.get("cloud_watch_logging_session") is None and kwargs.get("start_date") is not None:
            kwargs["cloud_watch_logging_session"] = _logging_session(exec_arn, machine)
    original(Execution, "__init__")(self, *args, **kwargs)


def _validate_execution_arn(self: StepFunctionBackend, execution_arn: str) -> None:
    if is_express_arn(execution_arn):
        if _inspected():
            return  # moto's own check knows the ``execution`` resource type only
        raise InvalidArn(NOT_IN_CONTEXT)
    original(StepFunctionBackend, "_validate_execution_arn")(self, execution_arn)


def _describe_state_machine_for_execution(self: StepFunctionBackend, execution_arn: str) -> Any:
    if is_express_arn(execution_arn) and not _inspected():
        raise InvalidArn(NOT_IN_CONTEXT)
    return original(StepFunctionBackend, "describe_state_machine_for_execution")(self, execution_arn)


def _list_executions(self: StepFunctionBackend, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
    if self.describe_state_machine(state_machine_arn).type == EXPRESS and not _inspected():
        raise StateMachineTypeNotSupported(TYPE_NOT_SUPPORTED)
    return original(StepFunctionBackend, "list_executions")(self, state_machine_arn, *args, **kwargs)


def _handle_name_input_idempotency(self: StateMachine, name: str, execution_input: str) -> Any:
    if self.type == EXPRESS:
        return None  # each start is a new execution, whatever its name
    return original(StateMachine, "_handle_name_input_idempotency")(self, name, execution_input)


_PATCHED: Final = (
    (StateMachine, "_handle_name_input_idempotency", _handle_name_input_idempotency),
    (Execution, "__init__", _execution_init),
    (StepFunctionBackend, "_validate_execution_arn", _validate_execution_arn),
    (StepFunctionBackend, "describe_state_machine_for_execution", _describe_state_machine_for_execution),
    (StepFunctionBackend, "list_executions", _list_executions),
)


def install_express_semantics() -> None:
    for owner, name, replacement in _PATCHED:
        if not is_patched(owner, name):
            patch(owner, name, replacement)


def uninstall_express_semantics() -> None:
    for owner, name, _ in _PATCHED:
        unpatch(owner, name)


_MODELS: Final = "moto.stepfunctions.models.StepFunctionBackend"
# moto's Execution.__init__ as pinned once: the wrapper below and services/persistence.py's restore (which builds a
# restored execution as StartExecution builds one) both call it with these keywords.
EXECUTION_INIT: Final = Signature(
    "moto.stepfunctions.parser.backend.execution.Execution.__init__",
    lambda: original(Execution, "__init__"),
    (
        "self",
        "name",
        "sm_type",
        "role_arn",
        "exec_arn",
        "account_id",
        "region_name",
        "state_machine",
        "start_date",
        "cloud_watch_logging_session",
        "activity_store",
        "input_data",
        "trace_header",
    ),
)
EXPRESS_SEMANTICS: Final = Patch(
    "EXPRESS executions: their ARN, no name idempotency, no Describe/History/Stop/Redrive/List, log delivery",
    depends=(
        EXECUTION_INIT,
        Source(  # moto builds every execution with keywords, without a logging session
            "moto.stepfunctions.parser.models.StepFunctionsParserBackend.start_execution",
            lambda: original(StepFunctionsParserBackend, "start_execution"),
            ("exec_arn=execution_arn,", "state_machine=state_machine_clone,", "cloud_watch_logging_session=None,"),
        ),
        Source(  # Describe, Stop and History (the parser's History describes first) check the ARN here
            f"{_MODELS}.describe_execution",
            lambda: StepFunctionBackend.describe_execution,
            ("self._validate_execution_arn(execution_arn)",),
        ),
        Source(
            f"{_MODELS}.stop_execution",
            lambda: StepFunctionBackend.stop_execution,
            ("self._validate_execution_arn(execution_arn)",),
        ),
        Signature(
            "moto.stepfunctions.models.StateMachine._handle_name_input_idempotency",
            lambda: original(StateMachine, "_handle_name_input_idempotency"),
            ("self", "name", "execution_input"),
        ),
        Signature(
            f"{_MODELS}.list_executions",
            lambda: original(StepFunctionBackend, "list_executions"),
            ("self", "state_machine_arn", "status_filter"),
        ),
        Check(  # the machine's type is in .type (moto's .sm_type is always STANDARD)
            "moto.stepfunctions.models.StateMachineInstance.__init__",
            lambda: (
                "self.type = sm_type"
                in __import__("inspect").getsource(
                    __import__("moto.stepfunctions.models", fromlist=["x"]).StateMachineInstance.__init__
                )
            ),
            "stores the machine's type as self.type",
        ),
        Source(
            "moto.stepfunctions.parser.asl.eval.event.logging.CloudWatchLoggingSession.__init__",
            lambda: CloudWatchLoggingSession.__init__,
            ("self._logs_client: LogsBackend = logs_backends[",),
        ),
        Source(  # every event, whatever the level, is offered to the session (which filters by level)
            "moto.stepfunctions.parser.asl.eval.event.event_manager.EventManager._publish_history_log",
            lambda: (
                __import__(
                    "moto.stepfunctions.parser.asl.eval.event.event_manager", fromlist=["x"]
                ).EventManager._publish_history_log
            ),
            ("self._cloud_watch_logging_session.publish_history_log(history_log=history_log)",),
        ),
        Signature(
            "moto.logs.models.LogsBackend.put_log_events",
            lambda: __import__("moto.logs.models", fromlist=["x"]).LogsBackend.put_log_events,
            ("self", "log_group_name", "log_stream_name", "log_events"),
        ),
        Signature(
            "moto.logs.models.LogsBackend.create_log_stream",
            lambda: __import__("moto.logs.models", fromlist=["x"]).LogsBackend.create_log_stream,
            ("self", "log_group_name", "log_stream_name"),
        ),
    ),
    install=install_express_semantics,
    uninstall=uninstall_express_semantics,
)

PATCHES: Final = (EXPRESS_SEMANTICS,)
