"""Every moto internal taskrail touches, in one place (moto 5.2.5 exactly; see :func:`assert_supported_moto`).

Seven hooks, each installed by a context manager (or install/uninstall pair for a long-running stack):

1. **Lambda invoker** -- :func:`lambda_invoker` replaces
   ``moto.awslambda_simple.models.LambdaSimpleBackend.invoke`` (the backend moto uses when the config has
   ``{"lambda": {"use_docker": False}}``) with a call to ``invoker(function_name, payload, qualifier)``.
   moto's HTTP layer (``moto.awslambda.responses.LambdaResponse.invoke``) returns our bytes as the
   ``Payload`` and copies ``response_headers`` into the response, so an :class:`InvokeOutcome` with
   ``function_error="Unhandled"`` becomes the ``X-Amz-Function-Error`` header; the Step Functions
   interpreter then reads ``errorType`` from the payload and the workflow sees that name as ``Error``.
   :class:`LambdaThrottled` / :class:`LambdaServiceError` are raised to moto as ``AWSError`` (HTTP 429 /
   500) and the workflow sees ``Lambda.TooManyRequestsException`` / ``Lambda.ServiceException``.
   The function must exist (``ResourceNotFoundException`` otherwise, as on AWS; moto's stock simple
   backend would echo the payload for any name). moto's ``create_function`` needs no Docker but
   does need an IAM role that exists in moto's IAM of the same account (``put_function`` looks it up;
   a missing role is ``InvalidParameterValueException``): see :func:`create_stub_function`.
   moto bug, fixed here: ``LambdaResponse.invoke`` reads the query parameter ``qualifier`` but the Invoke
   API's is ``Qualifier`` (botocore's model: ``location: querystring, locationName: Qualifier``), so a
   separate ``Qualifier`` never reached the backend. :func:`_invoke_with_qualifier` hands it on, as AWS
   does; a qualifier inside ``FunctionName`` (``name:alias`` or a qualified ARN) wins, as before.
   ``InvocationType=Event`` runs the invoker on a daemon thread; ``DryRun`` does not call it.

2. **Time scale** -- :func:`set_time_scale` / :func:`time_scale` / :func:`record_sleeps`. moto really
   sleeps for Retry intervals (``time.sleep`` in module
   ``moto.stepfunctions.parser.asl.component.common.retry.retrier_decl``; the value is the final
   interval after BackoffRate, MaxDelaySeconds and jitter) and Wait states
   (``WaitFunction._wait_interval``, an ``Event.wait`` so StopExecution can interrupt it). We replace the
   module's ``time`` name by a shim whose ``sleep`` is scaled, and ``_wait_interval`` by a scaled,
   still interruptible wait. Durations are recorded *before* scaling; scale 0 means no real waiting.

3. **Mock config** (Step Functions Local ``MockConfigFile.json``) -- :func:`install_mock_config`.
   moto vendors LocalStack's mocked-mode evaluation (``Environment.is_mocked_mode``,
   ``mock_eval_utils``) but never enables it. We wrap
   ``StepFunctionsParserBackend.start_execution`` to strip a ``#TestCase`` suffix from the state machine
   ARN (the Step Functions Local convention) and ``Execution._get_start_execution_worker`` to hand the
   resulting ``MockTestCase`` to the ``ExecutionWorker`` (via a thread-local: ``start_execution`` creates
   and starts the worker synchronously on the caller's thread). We also wrap
   ``StateTaskServiceDynamoDB._from_error``, which otherwise renames every non-``ClientError``
   (including a mocked Throw) to ``DynamoDB.AmazonDynamoDBException``: a ``FailureEventException``
   now keeps its own error name, so a mocked ``DynamoDB.ConditionalCheckFailedException`` is caught by
   that name. States of the test case answer from the mock by attempt number (``State.RetryCount``);
   other states call the real (moto) services. More attempts than mocked is a ``States.Runtime`` failure.

4. **StopExecution** -- :func:`install_aws_stop_semantics` wraps ``Execution.stop`` so the execution reads
   ABORTED at once, as on AWS; moto otherwise keeps it RUNNING until the current state returns (a state
   blocked in a synchronous Lambda invoke can take minutes). The function runs on, as on AWS.

5. **Atomic conditional writes** -- :func:`install_atomic_dynamodb_writes` serialises moto's DynamoDB item
   writes so a condition and its write are atomic, as in DynamoDB (concurrent duplicate claims otherwise
   both succeed).

6. **Speed** -- :func:`install_fast_interpreter` parses each definition once and reuses the interpreter's
   boto3 clients (moto re-parses per execution and builds a client per call).

7. **EventBridge → SNS** -- :func:`install_eventbridge_sns_targets` delivers rule targets that are SNS topics
   (moto drops them), applying the target's ``InputPath``.

Enabling execution in server mode (checked on 5.2.5): ``ThreadedMotoServer`` takes no config, and
``mock_aws(config=...)`` only patches ``moto.core.config.default_user_config`` for its own lifetime.
What works is ``MotoAPIBackend.set_config`` (what ``POST /moto-api/config`` calls) with
``{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}``: it replaces those
top-level keys of the process-wide ``default_user_config``, read on every request, so it takes effect at once.
State machines created *before* it live in the plain backend and vanish from ``list_state_machines``
afterwards: configure first. The local AWS endpoint does not serve ``/moto-api`` (any page could reset the
stack with a form POST), so :func:`reset_moto` calls the backend in-process.
The interpreter calls the other services at ``http://localhost:$MOTO_PORT`` (read per call, default
5000), so ``MOTO_PORT`` must be set in the server's process to the port actually bound.
:func:`threaded_server` does all of this, and restores the config and ``MOTO_PORT`` on exit.
In-process (``mock_aws``) no endpoint is needed: the interpreter's boto3 clients are intercepted.
"""

from __future__ import annotations

import copy
import inspect
import io
import json
import logging
import math
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Final

import moto
import moto.awslambda.responses as _lambda_responses
import moto.awslambda.utils as _lambda_utils
import moto.stepfunctions.responses as _sfn_responses
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.config import DefaultConfig, default_user_config
from moto.core.exceptions import AWSError
from moto.dynamodb.models import DynamoDBBackend
from moto.events.models import Rule as EventsRule
from moto.moto_api._internal.models import moto_api_backend
from moto.server import DomainDispatcherApplication, MotoRequestHandler, ThreadedMotoServer, create_backend_app
from moto.stepfunctions.exceptions import InvalidName
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils as _lambda_eval
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_dynamodb as _sfn_dynamodb,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_lambda as _sfn_lambda,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import (
    WaitFunction,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
from moto.stepfunctions.parser.asl.utils import boto_client as _sfn_boto_client
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.mocking.mock_config import (
    MockedResponse,
    MockedResponseReturn,
    MockedResponseThrow,
    MockTestCase,
    StateMockedResponses,
)
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

from taskrail.local.mock_config import (
    MockConfigError,
    MockConfigFile,
    MockedReturn,
    load_mock_config,
)

StateTaskServiceDynamoDB = _sfn_dynamodb.StateTaskServiceDynamoDB

__all__ = [
    "LOCAL_MOTO_CONFIG",
    "SUPPORTED_MOTO_VERSION",
    "InvokeOutcome",
    "LambdaInvokeError",
    "LambdaServiceError",
    "LambdaThrottled",
    "SleepLog",
    "SleepRecord",
    "assert_supported_moto",
    "build_mock_test_case",
    "clear_mock_config",
    "clear_recorded_sleeps",
    "create_stub_function",
    "install_lambda_invoker",
    "install_mock_config",
    "lambda_invoker",
    "record_sleeps",
    "recorded_sleeps",
    "reset_moto",
    "reset_time_scale",
    "set_mock_config",
    "set_time_scale",
    "start_execution_with_test_case",
    "threaded_server",
    "time_scale",
    "uninstall_lambda_invoker",
]

LOG = logging.getLogger(__name__)

SUPPORTED_MOTO_VERSION: Final = "5.2.5"

#: For ``mock_aws(config=...)`` or ``POST /moto-api/config``: run state machines, Lambda without Docker.
LOCAL_MOTO_CONFIG: Final[DefaultConfig] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}

# --------------------------------------------------------------------------------------------------
# Patch bookkeeping
# --------------------------------------------------------------------------------------------------

_lock = threading.RLock()
_originals: dict[tuple[Any, str], Any] = {}


def _patch(owner: type | ModuleType, attr: str, replacement: Any) -> None:
    with _lock:
        _originals.setdefault((owner, attr), vars(owner)[attr])
        setattr(owner, attr, replacement)


def _unpatch(owner: type | ModuleType, attr: str) -> None:
    with _lock:
        if (owner, attr) in _originals:
            setattr(owner, attr, _originals.pop((owner, attr)))


def _is_patched(owner: type | ModuleType, attr: str) -> bool:
    return (owner, attr) in _originals


def _original(owner: type | ModuleType, attr: str) -> Any:
    """moto's own attribute, whether or not we have patched it."""
    with _lock:
        return _originals.get((owner, attr), vars(owner).get(attr))


# --------------------------------------------------------------------------------------------------
# 1. Lambda invoker
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvokeOutcome:
    """What a Lambda invocation returned: the response payload and, for a failed handler, ``Unhandled``."""

    payload: bytes
    function_error: str | None = None

    @classmethod
    def success(cls, result: Any) -> InvokeOutcome:
        return cls(payload=json.dumps(result).encode("utf-8"))

    @classmethod
    def unhandled(cls, error_type: str, message: str, stack_trace: list[str] | None = None) -> InvokeOutcome:
        body = {"errorType": error_type, "errorMessage": message, "stackTrace": stack_trace or []}
        return cls(payload=json.dumps(body).encode("utf-8"), function_error="Unhandled")


class LambdaInvokeError(Exception):
    """An error of the Lambda service itself (not of the handler); surfaces as ``Lambda.<aws_code>``."""

    aws_code: str = "ServiceException"
    status: int = 500
    default_message: str = "An error occurred in the Lambda service."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class LambdaThrottled(LambdaInvokeError):
    aws_code = "TooManyRequestsException"
    status = 429
    default_message = "Rate Exceeded."


class LambdaServiceError(LambdaInvokeError):
    aws_code = "ServiceException"
    status = 500


LambdaInvoker = Callable[[str, bytes, str | None], InvokeOutcome]

_invoker: LambdaInvoker | None = None


def _split_function_name(name_or_arn: str, qualifier: str | None) -> tuple[str, str | None]:
    """``name``, ``name:qual`` or ``arn:aws:lambda:r:a:function:name[:qual]`` -> (name, qualifier)."""
    if name_or_arn.startswith("arn:"):
        parts = name_or_arn.split(":")
        return parts[6], (parts[7] if len(parts) > 7 else None) or qualifier
    name, _, in_name = name_or_arn.partition(":")
    return name, in_name or qualifier


def _call_invoker(invoker: LambdaInvoker, name: str, payload: bytes, qualifier: str | None) -> InvokeOutcome:
    outcome = invoker(name, payload, qualifier)
    if not isinstance(outcome, InvokeOutcome):
        raise TypeError(f"lambda invoker returned {type(outcome).__name__}, expected InvokeOutcome")
    return outcome


def _invoke_async(invoker: LambdaInvoker, name: str, payload: bytes, qualifier: str | None) -> None:
    def run() -> None:
        try:
            _call_invoker(invoker, name, payload, qualifier)
        except Exception:
            LOG.exception("asynchronous invocation of %s failed", name)

    threading.Thread(target=run, name=f"lambda-event-{name}", daemon=True).start()


def _hooked_lambda_invoke(
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes:
    invoker = _invoker
    if invoker is None:  # uninstalled concurrently
        original = _original(LambdaSimpleBackend, "invoke")
        return original(self, function_name, qualifier, body, headers, response_headers)
    self.get_function(function_name, qualifier)  # ResourceNotFoundException, as on AWS
    name, qualifier = _split_function_name(function_name, qualifier)
    payload = body.encode("utf-8") if isinstance(body, str) else bytes(body or b"")
    invocation_type = (headers or {}).get("X-Amz-Invocation-Type") or "RequestResponse"
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        _invoke_async(invoker, name, payload, qualifier)
        return b""
    try:
        outcome = _call_invoker(invoker, name, payload, qualifier)
    except LambdaInvokeError as exc:
        raise AWSError(str(exc), exception_type=exc.aws_code, status=exc.status) from exc
    if outcome.function_error:
        response_headers["x-amz-function-error"] = outcome.function_error
    return outcome.payload


def _invoke_with_qualifier(self: Any) -> Any:
    """moto reads ``?qualifier=``; AWS's Invoke takes ``?Qualifier=`` (botocore sends that): pass it on."""
    if "Qualifier" in self.querystring and "qualifier" not in self.querystring:
        self.querystring["qualifier"] = self.querystring["Qualifier"]
    return _original(_lambda_responses.LambdaResponse, "invoke")(self)


def install_lambda_invoker(invoker: LambdaInvoker) -> None:
    """Route every Lambda invoke of moto's no-Docker backend to ``invoker`` (replaces any previous one)."""
    global _invoker  # noqa: PLW0603
    with _lock:
        _invoker = invoker
        _patch(LambdaSimpleBackend, "invoke", _hooked_lambda_invoke)
        _patch(_lambda_responses.LambdaResponse, "invoke", _invoke_with_qualifier)


def uninstall_lambda_invoker() -> None:
    """Give moto back its echoing ``LambdaSimpleBackend.invoke``."""
    global _invoker  # noqa: PLW0603
    with _lock:
        _invoker = None
        _unpatch(LambdaSimpleBackend, "invoke")
        _unpatch(_lambda_responses.LambdaResponse, "invoke")


@contextmanager
def lambda_invoker(invoker: LambdaInvoker) -> Iterator[None]:
    """Context manager form of :func:`install_lambda_invoker`; restores the previous invoker on exit."""
    previous = _invoker
    install_lambda_invoker(invoker)
    try:
        yield
    finally:
        if previous is None:
            uninstall_lambda_invoker()
        else:
            install_lambda_invoker(previous)


def create_stub_function(
    lambda_client: Any,
    iam_client: Any,
    function_name: str,
    *,
    role_name: str = "taskrail-local-lambda",
    runtime: str = "python3.12",
    handler: str = "index.handler",
) -> str:
    """Create (or reuse) an IAM role and a Lambda function with a dummy zip; returns the function ARN.

    Needed so ``lambda:invoke`` finds the function: moto checks that the role exists in its IAM.
    """
    try:
        role_arn = iam_client.get_role(RoleName=role_name)["Role"]["Arn"]
    except iam_client.exceptions.NoSuchEntityException:
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role_arn = iam_client.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    response = lambda_client.create_function(
        FunctionName=function_name,
        Runtime=runtime,
        Role=role_arn,
        Handler=handler,
        Code={"ZipFile": buffer.getvalue()},
    )
    return str(response["FunctionArn"])


# --------------------------------------------------------------------------------------------------
# 2. Time scale for Retry intervals and Wait states
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SleepRecord:
    kind: str  # "retry" or "wait"
    seconds: float  # as requested by the workflow, before scaling


@dataclass
class SleepLog:
    records: list[SleepRecord] = field(default_factory=list)

    def retries(self) -> list[float]:
        return [r.seconds for r in self.records if r.kind == "retry"]

    def waits(self) -> list[float]:
        return [r.seconds for r in self.records if r.kind == "wait"]


_scale: float = 1.0
_all_sleeps = SleepLog()
_active_logs: list[SleepLog] = []


def _record(kind: str, seconds: float) -> None:
    record = SleepRecord(kind=kind, seconds=float(seconds))
    with _lock:
        _all_sleeps.records.append(record)
        for log in _active_logs:
            log.records.append(record)


class _ScaledTime:
    """Replaces the name ``time`` inside ``retrier_decl`` only; the real ``time.sleep`` is untouched."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        _record("retry", seconds)
        real = seconds * _scale
        if real > 0:
            time.sleep(real)


_SCALED_TIME: Final = _ScaledTime()


def _scaled_wait_interval(self: WaitFunction, env: Environment, wait_seconds: float) -> None:
    _record("wait", wait_seconds)
    deadline = time.monotonic() + max(wait_seconds, 0) * _scale
    while env.is_running():  # StopExecution sets program_state_event and ends the wait
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        env.program_state_event.wait(remaining)


def _install_time_patches() -> None:
    _patch(retrier_decl, "time", _SCALED_TIME)
    _patch(WaitFunction, "_wait_interval", _scaled_wait_interval)


def _time_patches_installed() -> bool:
    return _is_patched(WaitFunction, "_wait_interval")


def set_time_scale(scale: float) -> None:
    """Make Retry intervals and Wait states sleep ``requested * scale`` seconds (0 = not at all)."""
    global _scale  # noqa: PLW0603
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"time scale must be a finite number >= 0, got {scale!r}")
    with _lock:
        _install_time_patches()
        _scale = float(scale)


def reset_time_scale() -> None:
    """Real time again, and moto's own sleeping code restored."""
    global _scale  # noqa: PLW0603
    with _lock:
        _scale = 1.0
        _unpatch(retrier_decl, "time")
        _unpatch(WaitFunction, "_wait_interval")


@contextmanager
def time_scale(scale: float) -> Iterator[None]:
    """Context manager form of :func:`set_time_scale`."""
    was_installed, previous = _time_patches_installed(), _scale
    set_time_scale(scale)
    try:
        yield
    finally:
        if was_installed:
            set_time_scale(previous)
        else:
            reset_time_scale()


@contextmanager
def record_sleeps() -> Iterator[SleepLog]:
    """Collect the sleeps requested while the block runs (installs the hooks, keeping the current scale)."""
    log = SleepLog()
    with _lock:
        installed_here = not _time_patches_installed()
        if installed_here:
            _install_time_patches()
        _active_logs.append(log)
    try:
        yield log
    finally:
        with _lock:
            _active_logs.remove(log)
            if installed_here and not _active_logs and _scale == 1.0:
                reset_time_scale()


def recorded_sleeps() -> list[SleepRecord]:
    """Every sleep requested since the hooks were first installed (or last cleared)."""
    with _lock:
        return list(_all_sleeps.records)


def clear_recorded_sleeps() -> None:
    with _lock:
        _all_sleeps.records.clear()


# --------------------------------------------------------------------------------------------------
# 3. Step Functions Local mock config
# --------------------------------------------------------------------------------------------------

_mock_config: MockConfigFile | None = None
_pending = threading.local()  # .test_case: MockTestCase | None, between start_execution and worker creation


def build_mock_test_case(config: MockConfigFile, state_machine_name: str, test_case_name: str) -> MockTestCase:
    """moto's ``MockTestCase`` for one test case of a parsed mock config."""
    states = []
    for state_name, response_name in config.test_case(state_machine_name, test_case_name).items():
        responses: list[MockedResponse] = [
            MockedResponseReturn(r.start, r.end, payload=r.outcome.payload)
            if isinstance(r.outcome, MockedReturn)
            else MockedResponseThrow(r.start, r.end, error=r.outcome.error, cause=r.outcome.cause)
            for r in config.mocked_responses[response_name]
        ]
        states.append(StateMockedResponses(state_name, response_name, responses))
    return MockTestCase(state_machine_name, test_case_name, states)


def _start_execution_with_mock(
    self: StepFunctionsParserBackend,
    state_machine_arn: str,
    name: str | None = None,
    execution_input: str | None = None,
    trace_header: str | None = None,
) -> Any:
    original = _original(StepFunctionsParserBackend, "start_execution")
    base_arn, sep, test_case_name = state_machine_arn.partition("#")
    if not sep:
        return original(self, state_machine_arn, name, execution_input, trace_header)
    config = _mock_config
    if config is None:
        raise InvalidName(f"Test case '{test_case_name}' requested but no mock configuration is installed.")
    state_machine = self.describe_state_machine(base_arn)
    try:
        test_case = build_mock_test_case(config, state_machine.name, test_case_name)
    except MockConfigError as exc:
        raise InvalidName(f"Invalid mock test case name '{test_case_name}': {exc}") from exc
    _pending.test_case = test_case
    try:
        return original(self, base_arn, name, execution_input, trace_header)
    finally:
        _pending.test_case = None


def _get_start_execution_worker_with_mock(self: Execution) -> ExecutionWorker:
    worker = _original(Execution, "_get_start_execution_worker")(self)
    test_case = getattr(_pending, "test_case", None)
    if test_case is not None:
        worker._mock_test_case = test_case  # read by ExecutionWorker._get_evaluation_environment
    return worker


def _dynamodb_from_error(self: StateTaskServiceDynamoDB, env: Environment, ex: Exception) -> Any:
    if isinstance(ex, FailureEventException):
        return ex.failure_event
    return _original(StateTaskServiceDynamoDB, "_from_error")(self, env, ex)


def set_mock_config(source: MockConfigFile | Mapping[str, Any] | str | os.PathLike[str]) -> MockConfigFile:
    """Validate and install a mock config (object, decoded JSON, or path); replaces any previous one."""
    global _mock_config  # noqa: PLW0603
    config = load_mock_config(source)
    with _lock:
        _mock_config = config
        _patch(StepFunctionsParserBackend, "start_execution", _start_execution_with_mock)
        _patch(Execution, "_get_start_execution_worker", _get_start_execution_worker_with_mock)
        _patch(StateTaskServiceDynamoDB, "_from_error", _dynamodb_from_error)
    return config


def clear_mock_config() -> None:
    global _mock_config  # noqa: PLW0603
    with _lock:
        _mock_config = None
        _unpatch(StepFunctionsParserBackend, "start_execution")
        _unpatch(Execution, "_get_start_execution_worker")
        _unpatch(StateTaskServiceDynamoDB, "_from_error")


@contextmanager
def install_mock_config(
    source: MockConfigFile | Mapping[str, Any] | str | os.PathLike[str],
) -> Iterator[MockConfigFile]:
    """While active, ``start_execution(stateMachineArn=f"{arn}#{TestCase}")`` runs with that test case."""
    previous = _mock_config
    config = set_mock_config(source)
    try:
        yield config
    finally:
        if previous is None:
            clear_mock_config()
        else:
            set_mock_config(previous)


def start_execution_with_test_case(
    client: Any, state_machine_arn: str, test_case: str, *, name: str, input: Any = "{}"
) -> str:
    """``start_execution`` on ``{arn}#{test_case}`` (``input``: JSON text or an object); returns the ARN."""
    text = input if isinstance(input, str) else json.dumps(input)
    response = client.start_execution(stateMachineArn=f"{state_machine_arn}#{test_case}", name=name, input=text)
    return str(response["executionArn"])


# --------------------------------------------------------------------------------------------------
# 4. StopExecution as AWS answers it
# --------------------------------------------------------------------------------------------------


def _stop_now(self: Execution, stop_date: Any, error: str | None, cause: str | None) -> None:
    """moto only flags the program as stopped and reports ABORTED once the current state returns (a state
    blocked in a synchronous Lambda invoke can take minutes); AWS reports ABORTED at once and lets the
    function run on. Flag it, then reflect the status immediately; the worker reflects the same later."""
    _original(Execution, "stop")(self, stop_date=stop_date, error=error, cause=cause)
    if self.exec_status == ExecutionStatus.RUNNING:
        self.exec_status = ExecutionStatus.ABORTED
        self.stop_date = stop_date


def _final_once_stopped(method_name: str) -> Callable[..., None]:
    """moto's ``Environment.set_error`` / ``set_timed_out`` overwrite a stopped program's state: a Lambda task
    that returns an error after StopExecution turns an ABORTED execution into FAILED (with ExecutionFailed in
    its history). On AWS an aborted execution is final: StopExecution "Stops an execution" and the running
    task's outcome is not reported to it (StopExecution API reference; "Standard and Express workflow types":
    a stopped execution's status is ABORTED). A stopped program keeps its state; only the waiters are woken."""

    def keep_stop(self: Environment, *args: Any, **kwargs: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            self.program_state_event.set()
            self.program_state_event.clear()
            return
        _original(Environment, method_name)(self, *args, **kwargs)

    keep_stop.__name__ = method_name
    return keep_stop


_STOP_FINAL_METHODS: Final = ("set_error", "set_timed_out")


def install_aws_stop_semantics() -> None:
    if not _is_patched(Execution, "stop"):
        _patch(Execution, "stop", _stop_now)
    for name in _STOP_FINAL_METHODS:
        if not _is_patched(Environment, name):
            _patch(Environment, name, _final_once_stopped(name))


def uninstall_aws_stop_semantics() -> None:
    if _is_patched(Execution, "stop"):
        _unpatch(Execution, "stop")
    for name in _STOP_FINAL_METHODS:
        if _is_patched(Environment, name):
            _unpatch(Environment, name)


# --------------------------------------------------------------------------------------------------
# 4b. A Lambda error without an error type is Lambda.Unknown, as on AWS
# --------------------------------------------------------------------------------------------------

StateTaskServiceLambda = _sfn_lambda.StateTaskServiceLambda
LAMBDA_UNKNOWN: Final = "Lambda.Unknown"


def _lambda_unknown_cause(payload: str) -> str:
    return f"The cause could not be determined because Lambda did not return an error type. Returned payload: {payload}"


def _lambda_from_error(self: Any, env: Environment, ex: Exception) -> Any:
    """moto names a function error whose payload has no ``errorType`` ``Exception``. AWS reports it as
    ``Lambda.Unknown``: "Unhandled errors in Lambda are reported as Lambda.Unknown in the error output. These
    include out-of-memory errors and function timeouts" ("Handle Lambda service exceptions", Step Functions
    Developer Guide). A Retry or Catch on the AWS name must match locally too."""
    if isinstance(ex, _lambda_eval.LambdaFunctionErrorException):
        try:
            error_type = json.loads(ex.payload).get("errorType")
        except (ValueError, AttributeError):
            error_type = None
        if not error_type:
            typed = _lambda_eval.LambdaFunctionErrorException(
                ex.function_error, json.dumps({"errorType": LAMBDA_UNKNOWN})
            )
            failure = _original(StateTaskServiceLambda, "_from_error")(self, env, typed)
            details = (failure.event_details or {}).get("taskFailedEventDetails")
            if details is not None:
                details["cause"] = _lambda_unknown_cause(ex.payload)
            return failure
    return _original(StateTaskServiceLambda, "_from_error")(self, env, ex)


def install_lambda_error_names() -> None:
    if not _is_patched(StateTaskServiceLambda, "_from_error"):
        _patch(StateTaskServiceLambda, "_from_error", _lambda_from_error)


def uninstall_lambda_error_names() -> None:
    if _is_patched(StateTaskServiceLambda, "_from_error"):
        _unpatch(StateTaskServiceLambda, "_from_error")


# --------------------------------------------------------------------------------------------------
# 5. Atomic conditional writes in DynamoDB
# --------------------------------------------------------------------------------------------------

_DYNAMODB_WRITES: Final = ("put_item", "update_item", "delete_item", "transact_write_items")
_dynamodb_write_lock = threading.RLock()


def _atomic(method_name: str) -> Callable[..., Any]:
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _dynamodb_write_lock:
            return _original(DynamoDBBackend, method_name)(self, *args, **kwargs)

    write.__name__ = method_name
    return write


def install_atomic_dynamodb_writes() -> None:
    """moto checks a ConditionExpression and then writes, without a lock: two executions claiming one task
    at the same moment can both succeed. DynamoDB evaluates condition and write atomically; so do we, by
    serialising moto's item writes (the exactly-once claim depends on it)."""
    for name in _DYNAMODB_WRITES:
        if not _is_patched(DynamoDBBackend, name):
            _patch(DynamoDBBackend, name, _atomic(name))


def uninstall_atomic_dynamodb_writes() -> None:
    for name in _DYNAMODB_WRITES:
        if _is_patched(DynamoDBBackend, name):
            _unpatch(DynamoDBBackend, name)


# --------------------------------------------------------------------------------------------------
# 6. Speed: parse each definition once, reuse service clients
# --------------------------------------------------------------------------------------------------

_SFN_CLIENT_MODULES: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
)
_parsed_programs: dict[str, Any] = {}
_service_clients: dict[tuple[str, str, bool, str], Any] = {}


def _parse_once(self: ExecutionWorker) -> Any:
    definition = self._evaluation_details.state_machine_details.definition
    with _lock:
        program = _parsed_programs.get(definition)
    if program is None:
        program = _original(ExecutionWorker, "_get_evaluation_entrypoint")(self)
        with _lock:
            _parsed_programs[definition] = program
    return program


def _cached_client(region: str, service: str, state_credentials: Any = None) -> Any:
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    if state_credentials is not None:
        return _sfn_boto_client.boto_client_for(region, service, state_credentials)
    key = (region, service, bool(botocore_stubber.enabled), str(moto_server_port()))
    with _lock:
        client = _service_clients.get(key)
    if client is None:
        client = _sfn_boto_client.boto_client_for(region, service)
        with _lock:
            _service_clients[key] = client
    return client


def install_fast_interpreter() -> None:
    """moto parses a state machine's ASL again for every execution (~0.3 s of CPU for ours) and builds a new
    boto3 client for every service call (~20 ms each). The parsed program is immutable (an execution's state
    lives in its Environment), and boto3 clients are thread-safe: reuse both. Measured in docs/BENCHMARKS.md."""
    import importlib

    if not _is_patched(ExecutionWorker, "_get_evaluation_entrypoint"):
        _patch(ExecutionWorker, "_get_evaluation_entrypoint", _parse_once)
    for name in _SFN_CLIENT_MODULES:
        module = importlib.import_module(name)
        if not _is_patched(module, "boto_client_for"):
            _patch(module, "boto_client_for", _cached_client)


def uninstall_fast_interpreter() -> None:
    import importlib

    if _is_patched(ExecutionWorker, "_get_evaluation_entrypoint"):
        _unpatch(ExecutionWorker, "_get_evaluation_entrypoint")
    for name in _SFN_CLIENT_MODULES:
        module = importlib.import_module(name)
        if _is_patched(module, "boto_client_for"):
            _unpatch(module, "boto_client_for")
    with _lock:
        _parsed_programs.clear()
        _service_clients.clear()


# --------------------------------------------------------------------------------------------------
# 7. EventBridge rules with SNS targets
# --------------------------------------------------------------------------------------------------


def _json_path(data: Any, path: str) -> Any:
    for part in path.removeprefix("$").strip(".").split("."):
        if part:
            data = data[part]
    return data


def _send_to_targets(self: EventsRule, original_event: Any, transform_input: bool = True) -> None:
    """moto delivers rule targets to logs, SQS, archives and buses but drops SNS topics; deliver those as
    EventBridge does: the event (or its ``InputPath``) as the message, published to the topic."""

    def is_sns(target: dict[str, Any]) -> bool:
        return target["Arn"].split(":")[2:3] == ["sns"]

    sns_targets = [t for t in self.targets if is_sns(t)]
    if len(sns_targets) < len(self.targets):
        # moto raises NotImplementedError for an SNS target: hand it the others only.
        with _lock:
            every_target = self.targets
            self.targets = [t for t in every_target if not is_sns(t)]
            try:
                _original(EventsRule, "send_to_targets")(self, original_event, transform_input)
            finally:
                self.targets = every_target
    if not sns_targets or not self.event_pattern.matches_event(original_event):
        return
    from moto.sns.models import sns_backends

    for target in sns_targets:
        parts = target["Arn"].split(":")
        payload = _json_path(original_event, target["InputPath"]) if target.get("InputPath") else original_event
        message = payload if isinstance(payload, str) else json.dumps(payload, default=str)
        sns_backends[parts[4]][parts[3]].publish(message=message, arn=target["Arn"])


def install_eventbridge_sns_targets() -> None:
    if not _is_patched(EventsRule, "send_to_targets"):
        _patch(EventsRule, "send_to_targets", _send_to_targets)


def uninstall_eventbridge_sns_targets() -> None:
    if _is_patched(EventsRule, "send_to_targets"):
        _unpatch(EventsRule, "send_to_targets")


def install_aws_semantics() -> None:
    """Hooks 4-7 together: what every local run of the platform needs to behave as on AWS (and fast)."""
    install_aws_stop_semantics()
    install_lambda_error_names()
    install_atomic_dynamodb_writes()
    install_fast_interpreter()
    install_eventbridge_sns_targets()


def uninstall_aws_semantics() -> None:
    uninstall_eventbridge_sns_targets()
    uninstall_fast_interpreter()
    uninstall_atomic_dynamodb_writes()
    uninstall_lambda_error_names()
    uninstall_aws_stop_semantics()


# --------------------------------------------------------------------------------------------------
# Server mode
# --------------------------------------------------------------------------------------------------


def reset_moto(config: Mapping[str, Any] | None = LOCAL_MOTO_CONFIG) -> None:
    """Empty every moto backend of this process and apply ``config``: what ``POST /moto-api/reset`` and
    ``POST /moto-api/config`` do, in-process (the local AWS endpoint does not serve ``/moto-api``)."""
    moto_api_backend.reset()
    if config:
        moto_api_backend.set_config(dict(config))


@contextmanager
def threaded_server(
    host: str = "127.0.0.1",
    port: int = 0,
    config: Mapping[str, Any] | None = LOCAL_MOTO_CONFIG,
    credentials: Mapping[str, Any] | None = None,
) -> Iterator[str]:
    """Run moto's server app in this process behind the local guard; yields its endpoint URL.

    The app is moto's own (``DomainDispatcherApplication(create_backend_app)`` with ``MotoRequestHandler``, as
    ``ThreadedMotoServer._server_entry`` builds it) wrapped in :class:`taskrail.local.guard.AwsEndpointGuard`:
    loopback Host only, no browser, no CORS, no ``/moto-api``, SigV4 by one of ``credentials`` (default:
    ``users.known_credentials()``). Sets ``MOTO_PORT`` to the bound port (so the interpreter calls back to it),
    resets moto's process-wide backends and applies ``config`` in-process. One server per process; restored on
    exit.
    """
    from werkzeug.serving import make_server

    from taskrail.local.guard import AwsEndpointGuard
    from taskrail.local.users import known_credentials

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the local AWS endpoint binds to loopback only, not {host!r}")
    saved_config = copy.deepcopy(dict(default_user_config))
    saved_port = os.environ.get("MOTO_PORT")
    app = AwsEndpointGuard(DomainDispatcherApplication(create_backend_app), credentials or known_credentials())
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="local-aws-endpoint", daemon=True)
    try:
        bound_port = server.server_address[1]
        os.environ["MOTO_PORT"] = str(bound_port)
        # moto's backends are process-wide: a new server starts empty, as a new stack should.
        reset_moto(config)
        thread.start()
        yield f"http://{host}:{bound_port}"
    finally:
        if thread.is_alive():
            server.shutdown()
            thread.join(timeout=10)
        server.server_close()
        if saved_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = saved_port
        config_dict: dict[str, Any] = default_user_config  # type: ignore[assignment]
        config_dict.clear()
        config_dict.update(saved_config)


# --------------------------------------------------------------------------------------------------
# Compatibility check
# --------------------------------------------------------------------------------------------------

_SFN: Final = "moto.stepfunctions.parser"

# symbol -> (getter of moto's original object, expected parameter names)
_SIGNATURES: Final[dict[str, tuple[Callable[[], Any], list[str]]]] = {
    "moto.events.models.Rule.send_to_targets": (
        lambda: _original(EventsRule, "send_to_targets"),
        ["self", "original_event", "transform_input"],
    ),
    "moto.dynamodb.models.DynamoDBBackend.update_item": (
        lambda: _original(DynamoDBBackend, "update_item"),
        [
            "self",
            "table_name",
            "key",
            "update_expression",
            "expression_attribute_names",
            "expression_attribute_values",
            "attribute_updates",
            "expected",
            "condition_expression",
            "return_values_on_condition_check_failure",
        ],
    ),
    f"{_SFN}.backend.execution.Execution.stop": (
        lambda: _original(Execution, "stop"),
        ["self", "stop_date", "error", "cause"],
    ),
    "moto.awslambda_simple.models.LambdaSimpleBackend.invoke": (
        lambda: _original(LambdaSimpleBackend, "invoke"),
        ["self", "function_name", "qualifier", "body", "headers", "response_headers"],
    ),
    f"{_SFN}.asl.component.state.wait.wait_function.wait_function.WaitFunction._wait_interval": (
        lambda: _original(WaitFunction, "_wait_interval"),
        ["self", "env", "wait_seconds"],
    ),
    f"{_SFN}.models.StepFunctionsParserBackend.start_execution": (
        lambda: _original(StepFunctionsParserBackend, "start_execution"),
        ["self", "state_machine_arn", "name", "execution_input", "trace_header"],
    ),
    f"{_SFN}.backend.execution.Execution._get_start_execution_worker": (
        lambda: _original(Execution, "_get_start_execution_worker"),
        ["self"],
    ),
    f"{_SFN}.backend.execution_worker.ExecutionWorker.__init__": (
        lambda: ExecutionWorker.__init__,
        [
            "self",
            "evaluation_details",
            "exec_comm",
            "cloud_watch_logging_session",
            "activity_store",
            "mock_test_case",
        ],
    ),
    f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_dynamodb"
    ".StateTaskServiceDynamoDB._from_error": (
        lambda: _original(StateTaskServiceDynamoDB, "_from_error"),
        ["self", "env", "ex"],
    ),
    f"{_SFN}.asl.component.common.error_name.failure_event.FailureEventException.__init__": (
        lambda: FailureEventException.__init__,
        ["self", "failure_event"],
    ),
    f"{_SFN}.mocking.mock_config.MockedResponseReturn.__init__": (
        lambda: MockedResponseReturn.__init__,
        ["self", "range_start", "range_end", "payload"],
    ),
    f"{_SFN}.mocking.mock_config.MockedResponseThrow.__init__": (
        lambda: MockedResponseThrow.__init__,
        ["self", "range_start", "range_end", "error", "cause"],
    ),
    f"{_SFN}.mocking.mock_config.StateMockedResponses.__init__": (
        lambda: StateMockedResponses.__init__,
        ["self", "state_name", "mocked_response_name", "mocked_responses"],
    ),
    f"{_SFN}.mocking.mock_config.MockTestCase.__init__": (
        lambda: MockTestCase.__init__,
        ["self", "state_machine_name", "test_case_name", "state_mocked_responses_list"],
    ),
    "moto.core.exceptions.AWSError.__init__": (
        lambda: AWSError.__init__,
        ["self", "message", "exception_type", "status"],
    ),
    "moto.server.DomainDispatcherApplication.__init__": (
        lambda: DomainDispatcherApplication.__init__,
        ["self", "create_app"],
    ),
    "moto.server.create_backend_app": (lambda: create_backend_app, ["service"]),
    "moto.moto_api._internal.models.MotoAPIBackend.reset": (lambda: type(moto_api_backend).reset, ["self"]),
    "moto.moto_api._internal.models.MotoAPIBackend.set_config": (
        lambda: type(moto_api_backend).set_config,
        ["self", "config"],
    ),
}

# symbol -> (getter of moto's original object, source fragments our hooks rely on)
_SOURCES: Final[dict[str, tuple[Callable[[], Any], list[str]]]] = {
    f"{_SFN}.asl.component.common.retry.retrier_decl.RetrierDecl._eval_body": (
        lambda: retrier_decl.RetrierDecl._eval_body,
        ["time.sleep(interval_seconds)"],
    ),
    f"{_SFN}.asl.component.state.wait.wait_function.wait_function.WaitFunction._eval_body": (
        lambda: WaitFunction._eval_body,
        ["self._wait_interval(env=env, wait_seconds=w_sec)"],
    ),
    f"{_SFN}.asl.eval.environment.Environment.__init__": (
        lambda: Environment.__init__,
        ["self.program_state_event = threading.Event()", "self.mock_test_case = mock_test_case"],
    ),
    f"{_SFN}.asl.eval.environment.Environment.is_running": (
        lambda: Environment.is_running,
        ["def is_running"],
    ),
    f"{_SFN}.asl.eval.environment.Environment.set_error": (
        lambda: _original(Environment, "set_error"),
        ["self._program_state = ProgramError(error=error)", "self.program_state_event.set()"],
    ),
    f"{_SFN}.asl.eval.environment.Environment.set_timed_out": (
        lambda: _original(Environment, "set_timed_out"),
        ["self._program_state = ProgramTimedOut()", "self.program_state_event.set()"],
    ),
    f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_lambda"
    ".StateTaskServiceLambda._from_error": (
        lambda: _original(StateTaskServiceLambda, "_from_error"),
        ['error = cause_object["errorType"]', 'error = "Exception"', "LambdaFunctionErrorException"],
    ),
    f"{_SFN}.asl.eval.environment.Environment.set_stop": (
        lambda: Environment.set_stop,
        ["self._program_state = ProgramStopped("],
    ),
    f"{_SFN}.backend.execution_worker.ExecutionWorker._get_evaluation_environment": (
        lambda: ExecutionWorker._get_evaluation_environment,
        ["mock_test_case=self._mock_test_case"],
    ),
    f"{_SFN}.backend.execution.Execution.start": (
        lambda: Execution.start,
        ["self.exec_worker = self._get_start_execution_worker()", "self.exec_worker.start()"],
    ),
    f"{_SFN}.models.StepFunctionsParserBackend.start_execution (body)": (
        lambda: _original(StepFunctionsParserBackend, "start_execution"),
        ["self.describe_state_machine(state_machine_arn)", "execution.start()"],
    ),
    f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_dynamodb"
    ".StateTaskServiceDynamoDB._from_error (body)": (
        lambda: _original(StateTaskServiceDynamoDB, "_from_error"),
        ["isinstance(ex, ClientError)", "CustomErrorName(_ERROR_NAME_AWS)"],
    ),
    "moto.awslambda.responses.LambdaResponse.invoke": (
        lambda: _original(_lambda_responses.LambdaResponse, "invoke"),
        [
            'qualifier = self._get_param("qualifier")',
            "self.backend.invoke(",
            "function_name, qualifier, self.body, self.headers, response_headers",
        ],
    ),
    "moto.awslambda.utils.get_backend": (
        lambda: _lambda_utils.get_backend,
        ['get("use_docker", True) is False', "lambda_simple_backends"],
    ),
    "moto.moto_server.threaded_moto_server.ThreadedMotoServer._server_entry": (
        lambda: ThreadedMotoServer._server_entry,
        ["DomainDispatcherApplication(create_backend_app)", "request_handler=MotoRequestHandler"],
    ),
    "moto.moto_api._internal.models.MotoAPIBackend.set_config": (
        lambda: type(moto_api_backend).set_config,
        ['default_user_config["stepfunctions"] = config["stepfunctions"]'],
    ),
    "moto.stepfunctions.responses.get_backend": (
        lambda: _sfn_responses.get_backend,
        ['get("execute_state_machine", False)', "stepfunctions_parser_backends"],
    ),
    f"{_SFN}.asl.utils.boto_client.boto_client_for": (
        lambda: _sfn_boto_client.boto_client_for,
        ["botocore_stubber.enabled", 'f"http://localhost:{moto_server_port()}"'],
    ),
}


def _check_signature(symbol: str, getter: Callable[[], Any], expected: list[str]) -> str | None:
    try:
        actual = list(inspect.signature(getter()).parameters)
    except Exception as exc:
        return f"{symbol}: missing or not inspectable ({exc!r})"
    if actual != expected:
        return f"{symbol}: parameters {actual}, expected {expected}"
    return None


def _check_source(symbol: str, getter: Callable[[], Any], fragments: list[str]) -> str | None:
    try:
        source = inspect.getsource(getter())
    except Exception as exc:
        return f"{symbol}: missing or source unavailable ({exc!r})"
    missing = [f for f in fragments if f not in source]
    return f"{symbol}: source no longer contains {missing}" if missing else None


def _check_attributes() -> list[str]:
    problems = []
    if _original(retrier_decl, "time") is not time:
        problems.append(f"{_SFN}.asl.component.common.retry.retrier_decl.time: is not the time module")
    if not {"lambda", "stepfunctions"} <= set(default_user_config):
        problems.append("moto.core.config.default_user_config: lacks 'lambda' or 'stepfunctions'")
    return problems


def assert_supported_moto() -> None:
    """Raise RuntimeError naming every moto symbol that is not what these hooks were written against."""
    problems: list[str] = []
    if moto.__version__ != SUPPORTED_MOTO_VERSION:
        problems.append(f"moto.__version__: {moto.__version__!r}, expected {SUPPORTED_MOTO_VERSION!r}")
    problems += [p for s, (g, e) in _SIGNATURES.items() if (p := _check_signature(s, g, e))]
    problems += [p for s, (g, f) in _SOURCES.items() if (p := _check_source(s, g, f))]
    problems += _check_attributes()
    if problems:
        raise RuntimeError(
            "taskrail.local.moto_hooks does not support this moto installation; re-check these internals:\n  "
            + "\n  ".join(problems)
        )
