"""AWS Step Functions: moto's ASL interpreter, made to wait, stop, mock and name errors as AWS does.

- **Time scale** -- :func:`set_time_scale` / :func:`time_scale` / :func:`record_sleeps`. moto really sleeps for
  Retry intervals (``time.sleep`` in module ``moto.stepfunctions.parser.asl.component.common.retry.retrier_decl``;
  the value is the final interval after BackoffRate, MaxDelaySeconds and jitter) and Wait states
  (``WaitFunction._wait_interval``, an ``Event.wait`` so StopExecution can interrupt it). We replace the module's
  ``time`` name by a shim whose ``sleep`` is scaled, and ``_wait_interval`` by a scaled, still interruptible wait.
  Durations are recorded *before* scaling; scale 0 means no real waiting.
- **Mock config** (Step Functions Local ``MockConfigFile.json``, parsed by :mod:`taskrail.local.mock_config`) --
  :func:`install_mock_config`. moto vendors LocalStack's mocked-mode evaluation (``Environment.is_mocked_mode``,
  ``mock_eval_utils``) but never enables it. We wrap ``StepFunctionsParserBackend.start_execution`` to strip a
  ``#TestCase`` suffix from the state machine ARN (the Step Functions Local convention) and
  ``Execution._get_start_execution_worker`` to hand the resulting ``MockTestCase`` to the ``ExecutionWorker``
  (via a thread-local: ``start_execution`` creates and starts the worker synchronously on the caller's thread).
  We also wrap ``StateTaskServiceDynamoDB._from_error``, which otherwise renames every non-``ClientError``
  (including a mocked Throw) to ``DynamoDB.AmazonDynamoDBException``: a ``FailureEventException`` now keeps its
  own error name, so a mocked ``DynamoDB.ConditionalCheckFailedException`` is caught by that name. States of
  the test case answer from the mock by attempt number (``State.RetryCount``); other states call the real
  (moto) services. More attempts than mocked is a ``States.Runtime`` failure.
- **StopExecution** -- :func:`install_aws_stop_semantics` wraps ``Execution.stop`` so the execution reads
  ABORTED at once, as on AWS; moto otherwise keeps it RUNNING until the current state returns (a state blocked
  in a synchronous Lambda invoke can take minutes). The function runs on, as on AWS.
- **Lambda.Unknown, Lambda.AWSLambdaException** -- :func:`install_lambda_error_names`: a function error without
  an error type, and a denied invoke (``AccessDeniedException``), are named as AWS names them.
- **Speed** -- :func:`install_fast_interpreter` parses each definition once and reuses the interpreter's boto3
  clients (moto re-parses per execution and builds a client per call); :func:`install_jsonpath_cache` parses
  each JSONPath once (moto builds a jsonpath_ng parser for every path it evaluates).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import math
import os
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import jsonpath_ng
import jsonpath_ng.ext
from botocore.exceptions import ClientError
from moto.stepfunctions.exceptions import InvalidName
from moto.stepfunctions.parser.api import ExecutionStatus
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.path import result_path as _sfn_result_path
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils as _lambda_eval
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task as _state_task
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
from moto.stepfunctions.parser.asl.utils import json_path as _sfn_json_path
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

from taskrail.local.mock_config import MockConfigError, MockConfigFile, MockedReturn, load_mock_config
from taskrail.local.services.patching import (
    Check,
    Patch,
    Signature,
    Source,
    is_patched,
    lock,
    original,
    patch,
    unpatch,
)

__all__ = [
    "PATCHES",
    "SleepLog",
    "SleepRecord",
    "build_mock_test_case",
    "clear_mock_config",
    "clear_recorded_sleeps",
    "install_aws_stop_semantics",
    "install_fast_interpreter",
    "install_lambda_error_names",
    "install_mock_config",
    "record_sleeps",
    "recorded_sleeps",
    "reset_time_scale",
    "set_mock_config",
    "set_time_scale",
    "start_execution_with_test_case",
    "time_scale",
    "uninstall_aws_stop_semantics",
    "uninstall_fast_interpreter",
    "uninstall_lambda_error_names",
]

_SFN: Final = "moto.stepfunctions.parser"
StateTaskServiceDynamoDB = _sfn_dynamodb.StateTaskServiceDynamoDB


# --------------------------------------------------------------------------------------------------
# Time scale for Retry intervals and Wait states
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
    with lock:
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
    patch(retrier_decl, "time", _SCALED_TIME)
    patch(WaitFunction, "_wait_interval", _scaled_wait_interval)


def _time_patches_installed() -> bool:
    return is_patched(WaitFunction, "_wait_interval")


def set_time_scale(scale: float) -> None:
    """Make Retry intervals and Wait states sleep ``requested * scale`` seconds (0 = not at all)."""
    global _scale  # noqa: PLW0603
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"time scale must be a finite number >= 0, got {scale!r}")
    with lock:
        _install_time_patches()
        _scale = float(scale)


def reset_time_scale() -> None:
    """Real time again, and moto's own sleeping code restored."""
    global _scale  # noqa: PLW0603
    with lock:
        _scale = 1.0
        unpatch(retrier_decl, "time")
        unpatch(WaitFunction, "_wait_interval")


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
    with lock:
        installed_here = not _time_patches_installed()
        if installed_here:
            _install_time_patches()
        _active_logs.append(log)
    try:
        yield log
    finally:
        with lock:
            _active_logs.remove(log)
            if installed_here and not _active_logs and _scale == 1.0:
                reset_time_scale()


def recorded_sleeps() -> list[SleepRecord]:
    """Every sleep requested since the hooks were first installed (or last cleared)."""
    with lock:
        return list(_all_sleeps.records)


def clear_recorded_sleeps() -> None:
    with lock:
        _all_sleeps.records.clear()


TIME_SCALE: Final = Patch(
    "time scale of Retry intervals and Wait states",
    depends=(
        Signature(
            f"{_SFN}.asl.component.state.wait.wait_function.wait_function.WaitFunction._wait_interval",
            lambda: original(WaitFunction, "_wait_interval"),
            ("self", "env", "wait_seconds"),
        ),
        Source(
            f"{_SFN}.asl.component.common.retry.retrier_decl.RetrierDecl._eval_body",
            lambda: retrier_decl.RetrierDecl._eval_body,
            ("time.sleep(interval_seconds)",),
        ),
        Source(
            f"{_SFN}.asl.component.state.wait.wait_function.wait_function.WaitFunction._eval_body",
            lambda: WaitFunction._eval_body,
            ("self._wait_interval(env=env, wait_seconds=w_sec)",),
        ),
        Source(
            f"{_SFN}.asl.eval.environment.Environment.__init__",
            lambda: Environment.__init__,
            ("self.program_state_event = threading.Event()",),
        ),
        Source(
            f"{_SFN}.asl.eval.environment.Environment.is_running", lambda: Environment.is_running, ("def is_running",)
        ),
        Check(
            f"{_SFN}.asl.component.common.retry.retrier_decl.time",
            lambda: original(retrier_decl, "time") is time,
            "is not the time module",
        ),
    ),
    uninstall=reset_time_scale,
)

# --------------------------------------------------------------------------------------------------
# Step Functions Local mock config
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
    moto_start = original(StepFunctionsParserBackend, "start_execution")
    base_arn, sep, test_case_name = state_machine_arn.partition("#")
    if not sep:
        return moto_start(self, state_machine_arn, name, execution_input, trace_header)
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
        return moto_start(self, base_arn, name, execution_input, trace_header)
    finally:
        _pending.test_case = None


def _get_start_execution_worker_with_mock(self: Execution) -> ExecutionWorker:
    worker = original(Execution, "_get_start_execution_worker")(self)
    test_case = getattr(_pending, "test_case", None)
    if test_case is not None:
        worker._mock_test_case = test_case  # read by ExecutionWorker._get_evaluation_environment
    return worker


def _dynamodb_from_error(self: StateTaskServiceDynamoDB, env: Environment, ex: Exception) -> Any:
    if isinstance(ex, FailureEventException):
        return ex.failure_event
    return original(StateTaskServiceDynamoDB, "_from_error")(self, env, ex)


def set_mock_config(source: MockConfigFile | Mapping[str, Any] | str | os.PathLike[str]) -> MockConfigFile:
    """Validate and install a mock config (object, decoded JSON, or path); replaces any previous one."""
    global _mock_config  # noqa: PLW0603
    config = load_mock_config(source)
    with lock:
        _mock_config = config
        patch(StepFunctionsParserBackend, "start_execution", _start_execution_with_mock)
        patch(Execution, "_get_start_execution_worker", _get_start_execution_worker_with_mock)
        patch(StateTaskServiceDynamoDB, "_from_error", _dynamodb_from_error)
    return config


def clear_mock_config() -> None:
    global _mock_config  # noqa: PLW0603
    with lock:
        _mock_config = None
        unpatch(StepFunctionsParserBackend, "start_execution")
        unpatch(Execution, "_get_start_execution_worker")
        unpatch(StateTaskServiceDynamoDB, "_from_error")


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


MOCK_CONFIG: Final = Patch(
    "Step Functions Local mock config (#TestCase)",
    depends=(
        Signature(
            f"{_SFN}.models.StepFunctionsParserBackend.start_execution",
            lambda: original(StepFunctionsParserBackend, "start_execution"),
            ("self", "state_machine_arn", "name", "execution_input", "trace_header"),
        ),
        Source(
            f"{_SFN}.models.StepFunctionsParserBackend.start_execution (body)",
            lambda: original(StepFunctionsParserBackend, "start_execution"),
            ("self.describe_state_machine(state_machine_arn)", "execution.start()"),
        ),
        Signature(
            f"{_SFN}.backend.execution.Execution._get_start_execution_worker",
            lambda: original(Execution, "_get_start_execution_worker"),
            ("self",),
        ),
        Source(
            f"{_SFN}.backend.execution.Execution.start",
            lambda: original(Execution, "start"),
            ("self.exec_worker = self._get_start_execution_worker()", "self.exec_worker.start()"),
        ),
        Signature(
            f"{_SFN}.backend.execution_worker.ExecutionWorker.__init__",
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
            f"{_SFN}.backend.execution_worker.ExecutionWorker._get_evaluation_environment",
            lambda: original(ExecutionWorker, "_get_evaluation_environment"),
            ("mock_test_case=self._mock_test_case",),
        ),
        Source(
            f"{_SFN}.asl.eval.environment.Environment.__init__ (mock test case)",
            lambda: Environment.__init__,
            ("self.mock_test_case = mock_test_case",),
        ),
        Signature(
            f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_dynamodb"
            ".StateTaskServiceDynamoDB._from_error",
            lambda: original(StateTaskServiceDynamoDB, "_from_error"),
            ("self", "env", "ex"),
        ),
        Source(
            f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_dynamodb"
            ".StateTaskServiceDynamoDB._from_error (body)",
            lambda: original(StateTaskServiceDynamoDB, "_from_error"),
            ("isinstance(ex, ClientError)", "CustomErrorName(_ERROR_NAME_AWS)"),
        ),
        Signature(
            f"{_SFN}.asl.component.common.error_name.failure_event.FailureEventException.__init__",
            lambda: FailureEventException.__init__,
            ("self", "failure_event"),
        ),
        Signature(
            f"{_SFN}.mocking.mock_config.MockedResponseReturn.__init__",
            lambda: MockedResponseReturn.__init__,
            ("self", "range_start", "range_end", "payload"),
        ),
        Signature(
            f"{_SFN}.mocking.mock_config.MockedResponseThrow.__init__",
            lambda: MockedResponseThrow.__init__,
            ("self", "range_start", "range_end", "error", "cause"),
        ),
        Signature(
            f"{_SFN}.mocking.mock_config.StateMockedResponses.__init__",
            lambda: StateMockedResponses.__init__,
            ("self", "state_name", "mocked_response_name", "mocked_responses"),
        ),
        Signature(
            f"{_SFN}.mocking.mock_config.MockTestCase.__init__",
            lambda: MockTestCase.__init__,
            ("self", "state_machine_name", "test_case_name", "state_mocked_responses_list"),
        ),
    ),
    uninstall=clear_mock_config,
)

# --------------------------------------------------------------------------------------------------
# StopExecution as AWS answers it
# --------------------------------------------------------------------------------------------------


def _stop_now(self: Execution, stop_date: Any, error: str | None, cause: str | None) -> None:
    """moto only flags the program as stopped and reports ABORTED once the current state returns (a state
    blocked in a synchronous Lambda invoke can take minutes); AWS reports ABORTED at once and lets the
    function run on. Flag it, then reflect the status immediately; the worker reflects the same later."""
    original(Execution, "stop")(self, stop_date=stop_date, error=error, cause=cause)
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
        original(Environment, method_name)(self, *args, **kwargs)

    keep_stop.__name__ = method_name
    return keep_stop


_STOP_FINAL_METHODS: Final = ("set_error", "set_timed_out")


def install_aws_stop_semantics() -> None:
    if not is_patched(Execution, "stop"):
        patch(Execution, "stop", _stop_now)
    for name in _STOP_FINAL_METHODS:
        if not is_patched(Environment, name):
            patch(Environment, name, _final_once_stopped(name))


def uninstall_aws_stop_semantics() -> None:
    if is_patched(Execution, "stop"):
        unpatch(Execution, "stop")
    for name in _STOP_FINAL_METHODS:
        if is_patched(Environment, name):
            unpatch(Environment, name)


STOP_SEMANTICS: Final = Patch(
    "StopExecution: ABORTED at once, and final",
    depends=(
        Signature(
            f"{_SFN}.backend.execution.Execution.stop",
            lambda: original(Execution, "stop"),
            ("self", "stop_date", "error", "cause"),
        ),
        Source(
            f"{_SFN}.asl.eval.environment.Environment.set_error",
            lambda: original(Environment, "set_error"),
            ("self._program_state = ProgramError(error=error)", "self.program_state_event.set()"),
        ),
        Source(
            f"{_SFN}.asl.eval.environment.Environment.set_timed_out",
            lambda: original(Environment, "set_timed_out"),
            ("self._program_state = ProgramTimedOut()", "self.program_state_event.set()"),
        ),
        Source(
            f"{_SFN}.asl.eval.environment.Environment.set_stop",
            lambda: Environment.set_stop,
            ("self._program_state = ProgramStopped(",),
        ),
    ),
    install=install_aws_stop_semantics,
    uninstall=uninstall_aws_stop_semantics,
)

# --------------------------------------------------------------------------------------------------
# A Lambda error without an error type is Lambda.Unknown, as on AWS
# --------------------------------------------------------------------------------------------------

StateTaskServiceLambda = _sfn_lambda.StateTaskServiceLambda
LAMBDA_UNKNOWN: Final = "Lambda.Unknown"


def _lambda_unknown_cause(payload: str) -> str:
    return f"The cause could not be determined because Lambda did not return an error type. Returned payload: {payload}"


#: Lambda error codes AWS names otherwise in an execution: a denied invoke is ``Lambda.AWSLambdaException`` with
#: "(Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException; ...)" in its cause (AWS executions
#: quoted in awslabs/aws-deployment-framework#460, 2022, and aws-samples/lambda-refarch-imagerecognition#19, 2019);
#: moto names it ``Lambda.AccessDeniedException``. Other codes keep ``Lambda.<code>``, as AWS documents
#: ``Lambda.TooManyRequestsException`` and ``Lambda.ServiceException`` ("Handle Lambda service exceptions").
LAMBDA_RENAMED_CODES: Final = {"AccessDeniedException": "Lambda.AWSLambdaException"}


def _lambda_renamed(self: Any, env: Environment, ex: ClientError) -> Any:
    failure = original(StateTaskServiceLambda, "_from_error")(self, env, ex)
    name = LAMBDA_RENAMED_CODES[ex.response["Error"]["Code"]]
    details = (failure.event_details or {}).get("taskFailedEventDetails")
    if details is not None:
        details["error"] = name  # the cause keeps "Error Code: AccessDeniedException", as on AWS
    return FailureEvent(env, CustomErrorName(name), failure.event_type, failure.event_details)


def _lambda_from_error(self: Any, env: Environment, ex: Exception) -> Any:
    """moto names a function error whose payload has no ``errorType`` ``Exception``. AWS reports it as
    ``Lambda.Unknown``: "Unhandled errors in Lambda are reported as Lambda.Unknown in the error output. These
    include out-of-memory errors and function timeouts" ("Handle Lambda service exceptions", Step Functions
    Developer Guide). A denied invoke is renamed per :data:`LAMBDA_RENAMED_CODES`. A Retry or Catch on the AWS
    name must match locally too."""
    if isinstance(ex, ClientError) and ex.response.get("Error", {}).get("Code") in LAMBDA_RENAMED_CODES:
        return _lambda_renamed(self, env, ex)
    if isinstance(ex, _lambda_eval.LambdaFunctionErrorException):
        try:
            error_type = json.loads(ex.payload).get("errorType")
        except (ValueError, AttributeError):
            error_type = None
        if not error_type:
            typed = _lambda_eval.LambdaFunctionErrorException(
                ex.function_error, json.dumps({"errorType": LAMBDA_UNKNOWN})
            )
            failure = original(StateTaskServiceLambda, "_from_error")(self, env, typed)
            details = (failure.event_details or {}).get("taskFailedEventDetails")
            if details is not None:
                details["cause"] = _lambda_unknown_cause(ex.payload)
            return failure
    return original(StateTaskServiceLambda, "_from_error")(self, env, ex)


def install_lambda_error_names() -> None:
    if not is_patched(StateTaskServiceLambda, "_from_error"):
        patch(StateTaskServiceLambda, "_from_error", _lambda_from_error)


def uninstall_lambda_error_names() -> None:
    if is_patched(StateTaskServiceLambda, "_from_error"):
        unpatch(StateTaskServiceLambda, "_from_error")


LAMBDA_ERROR_NAMES: Final = Patch(
    "a Lambda error without an error type is Lambda.Unknown, a denied invoke Lambda.AWSLambdaException",
    depends=(
        Source(
            f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_lambda"
            ".StateTaskServiceLambda._from_error",
            lambda: original(StateTaskServiceLambda, "_from_error"),
            (
                'error = cause_object["errorType"]',
                'error = "Exception"',
                "LambdaFunctionErrorException",
                "elif isinstance(ex, ClientError):",
                "taskFailedEventDetails=TaskFailedEventDetails(",
            ),
        ),
        Source(
            f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_lambda"
            ".StateTaskServiceLambda._error_cause_from_client_error",
            lambda: StateTaskServiceLambda._error_cause_from_client_error,
            ('error = f"Lambda.{error_code}"', '"Service: AWSLambda"'),
        ),
        Signature(
            f"{_SFN}.asl.component.common.error_name.failure_event.FailureEvent.__init__",
            lambda: FailureEvent.__init__,
            ("self", "env", "error_name", "event_type", "event_details"),
        ),
    ),
    install=install_lambda_error_names,
    uninstall=uninstall_lambda_error_names,
)

# --------------------------------------------------------------------------------------------------
# Speed: parse each definition once, reuse service clients
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
    with lock:
        program = _parsed_programs.get(definition)
    if program is None:
        program = original(ExecutionWorker, "_get_evaluation_entrypoint")(self)
        with lock:
            _parsed_programs[definition] = program
    return program


#: role ARN -> a boto3 client factory signed as that role (taskrail/local/iam), or None: moto's fixed key signs.
_role_clients: Callable[[str, str, str], Any] | None = None


def set_role_clients(factory: Callable[[str, str, str], Any] | None) -> None:
    """Sign the interpreter's service calls as the state machine's role: ``factory(region, service, role_arn)``
    returns that role's client (or None for a role it does not know). ``None`` restores moto's fixed key."""
    global _role_clients  # noqa: PLW0603 - one process-wide interpreter, like the patches themselves
    _role_clients = factory
    with lock:
        _service_clients.clear()


def _cached_client(region: str, service: str, state_credentials: Any = None) -> Any:
    from moto.core.models import botocore_stubber
    from moto.settings import moto_server_port

    role_arn = getattr(state_credentials, "role_arn", None)
    factory = _role_clients
    if factory is not None and role_arn:
        key = (region, service, bool(botocore_stubber.enabled), f"{moto_server_port()}:{role_arn}")
        with lock:
            client = _service_clients.get(key)
        if client is None:
            client = factory(region, service, str(role_arn))
            if client is None:
                return _sfn_boto_client.boto_client_for(region, service, state_credentials)
            with lock:
                _service_clients[key] = client
        return client
    # No role client: moto's own, which signs with its fixed key whatever the credentials (FAST_INTERPRETER
    # checks that it ignores them), so one per region, service and endpoint serves every state machine.
    key = (region, service, bool(botocore_stubber.enabled), str(moto_server_port()))
    with lock:
        client = _service_clients.get(key)
    if client is None:
        client = _sfn_boto_client.boto_client_for(region, service)
        with lock:
            _service_clients[key] = client
    return client


def install_fast_interpreter() -> None:
    """moto parses a state machine's ASL again for every execution (~0.3 s of CPU for ours) and builds a new
    boto3 client for every service call (~20 ms each). The parsed program is immutable (an execution's state
    lives in its Environment), and boto3 clients are thread-safe: reuse both. Measured in docs/BENCHMARKS.md."""
    if not is_patched(ExecutionWorker, "_get_evaluation_entrypoint"):
        patch(ExecutionWorker, "_get_evaluation_entrypoint", _parse_once)
    for name in _SFN_CLIENT_MODULES:
        module = importlib.import_module(name)
        if not is_patched(module, "boto_client_for"):
            patch(module, "boto_client_for", _cached_client)


def uninstall_fast_interpreter() -> None:
    if is_patched(ExecutionWorker, "_get_evaluation_entrypoint"):
        unpatch(ExecutionWorker, "_get_evaluation_entrypoint")
    for name in _SFN_CLIENT_MODULES:
        module = importlib.import_module(name)
        if is_patched(module, "boto_client_for"):
            unpatch(module, "boto_client_for")
    with lock:
        _parsed_programs.clear()
        _service_clients.clear()


def _has_boto_client_for(module_name: str) -> bool:
    return "boto_client_for" in vars(importlib.import_module(module_name))


def _ignores_state_credentials() -> bool:
    """moto's boto_client_for takes the state's credentials and does not use them (its body never names them):
    its client for one region and service is the same whatever the credentials, so it is cached once."""
    function = ast.parse(textwrap.dedent(inspect.getsource(_sfn_boto_client.boto_client_for))).body[0]
    assert isinstance(function, ast.FunctionDef)
    names = {node.id for statement in function.body for node in ast.walk(statement) if isinstance(node, ast.Name)}
    return "state_credentials" in {arg.arg for arg in function.args.args} and "state_credentials" not in names


FAST_INTERPRETER: Final = Patch(
    "parse each definition once, reuse the interpreter's clients",
    depends=(
        Signature(
            f"{_SFN}.backend.execution_worker.ExecutionWorker._get_evaluation_entrypoint",
            lambda: original(ExecutionWorker, "_get_evaluation_entrypoint"),
            ("self",),
        ),
        Source(
            f"{_SFN}.asl.utils.boto_client.boto_client_for",
            lambda: _sfn_boto_client.boto_client_for,
            # the fixed key and the Config that taskrail.local.iam.interpreter.role_client signs over as a role
            (
                "botocore_stubber.enabled",
                'f"http://localhost:{moto_server_port()}"',
                'aws_access_key_id="ak"',
                "parameter_validation=False",
                "TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS",
            ),
        ),
        Check(
            f"{_SFN}.asl.utils.boto_client.boto_client_for",
            _ignores_state_credentials,
            "uses the state's credentials: a client cached without them would sign as the wrong principal",
        ),
        Source(
            f"{_SFN}.asl.component.state.exec.state_task.state_task.StateTask._eval_state_credentials",
            lambda: _state_task.StateTask._eval_state_credentials,
            ("role_arn=env.aws_execution_details.role_arn",),  # the machine's role reaches boto_client_for
        ),
        *(
            Check(
                f"{name}.boto_client_for",
                partial(_has_boto_client_for, name),
                "is not a module attribute",
            )
            for name in _SFN_CLIENT_MODULES
        ),
    ),
    install=install_fast_interpreter,
    uninstall=uninstall_fast_interpreter,
)

# --------------------------------------------------------------------------------------------------
# Speed: parse each JSONPath once
# --------------------------------------------------------------------------------------------------

#: Paths remembered per parser at most (a workflow has a few dozen; made-up ones beyond are parsed each time).
JSONPATH_CACHE_SIZE: Final = 4096
#: moto's modules that call jsonpath_ng's ``parse`` on every evaluation, and the parser each imports.
_JSONPATH_MODULES: Final = (
    (_sfn_json_path, "jsonpath_ng.ext.parse", jsonpath_ng.ext.parse),  # InputPath, Parameters' "x.$", OutputPath
    (_sfn_result_path, "jsonpath_ng.parse", jsonpath_ng.parse),  # ResultPath
)


def _parsed_once(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` remembered per path. jsonpath_ng builds a new PLY parser (its grammar tables) for every call,
    ~1-1.5 ms; moto calls it for every path of every state of every execution (~25 per task here). The parsed
    expression holds no state of a search (``find`` and ``update_or_create`` read it), so one serves all
    threads."""
    parsed: dict[str, Any] = {}

    def cached(path: str) -> Any:
        try:
            return parsed[path]
        except KeyError:
            pass
        expression = parse(path)
        if len(parsed) < JSONPATH_CACHE_SIZE:
            parsed[path] = expression
        return expression

    return cached


def install_jsonpath_cache() -> None:
    for module, _name, parse in _JSONPATH_MODULES:
        if not is_patched(module, "parse"):
            patch(module, "parse", _parsed_once(parse))


def uninstall_jsonpath_cache() -> None:
    for module, _name, _parse in _JSONPATH_MODULES:
        unpatch(module, "parse")


JSONPATH_CACHE: Final = Patch(
    "parse each JSONPath once",
    depends=(
        Source(f"{_SFN}.asl.utils.json_path.extract_json", lambda: _sfn_json_path.extract_json,
               ("input_expr = parse(path)",)),
        Source(f"{_SFN}.asl.component.common.path.result_path.ResultPath._eval_body",
               lambda: _sfn_result_path.ResultPath._eval_body, ("result_expr = parse(self.result_path_src)",)),
        *(
            Check(f"{module.__name__}.parse", partial(lambda m, p: original(m, "parse") is p, module, parse),
                  f"is not {name}")
            for module, name, parse in _JSONPATH_MODULES
        ),
    ),
    install=install_jsonpath_cache,
    uninstall=uninstall_jsonpath_cache,
)  # fmt: skip

PATCHES: Final = (TIME_SCALE, MOCK_CONFIG, STOP_SEMANTICS, LAMBDA_ERROR_NAMES, FAST_INTERPRETER, JSONPATH_CACHE)
