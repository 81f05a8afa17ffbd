"""AWS Step Functions errors that Retry and Catch cannot match (moto's ``States.ALL`` matches every error).

AWS ("Handling errors in Step Functions workflows", Step Functions Developer Guide,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html): "The States.ALL error type
[...] can't catch the States.DataLimitExceeded terminal error or Runtime error types"; ``States.DataLimitExceeded``
is "A terminal error that can't be caught by the States.ALL error type"; ``States.Runtime``: "An execution failed
due to some exception that it couldn't process [...] Errors of this type aren't retriable and will always cause
the execution to fail. A retry or catch on States.ALL won't catch States.Runtime errors."

Locally :func:`install_uncatchable_errors` wraps ``ErrorEqualsDecl._eval_body`` (the one check every Retrier and
Catcher makes): ``States.Runtime`` matches no ErrorEquals, and ``States.DataLimitExceeded`` is not matched by
``States.ALL`` (only by its own name). The execution then fails with that error, as on AWS.

AWS SDK integrations (``arn:aws:states:::aws-sdk:<service>:<action>``) name an error ``ServiceName.ErrorName``,
"Both the service name and error name are in Pascal case" (``AcmPca.ResourceNotFoundException``,
``S3.BucketAlreadyExistsException``: "Learning to use AWS service SDK integrations in Step Functions",
https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html). moto knows the Pascal-case
name of ``dynamodb`` and ``sfn`` only and keeps the lower-case service name otherwise (``s3.NoSuchBucketException``,
which a Retry or Catch on ``S3.…`` never matches): :func:`install_sdk_error_names` supplies the documented names
and, for any other service, upper-cases its first letter.

A Task past its ``TimeoutSeconds`` fails with ``States.Timeout`` ("Task workflow state": "If the task runs longer
than the specified seconds, this state fails with a States.Timeout error name"). moto raises it, but the worker
thread it timed out goes on and, when the late result arrives, still writes ``TaskSucceeded`` into the history
(after the Catch's next state, even after ``ExecutionSucceeded``). :func:`install_late_results_dropped` drops a
service task's result whose frame has already ended.

A PutEvents that EventBridge refuses (a missing bus, access denied) is a task failure, which ``States.TaskFailed``
and ``States.ALL`` match ("Handling errors in Step Functions workflows": States.TaskFailed "A Task state failed
during the execution"); moto reports any exception of its EventBridge integration but ``FailedEntryCount`` as
``States.Runtime``, which (as on AWS) nothing catches. :func:`install_eventbridge_task_errors` names it
``EventBridge.AmazonEventBridgeException`` (the SDK exception's name, as the audit in docs/AWS-REVIEW.md proposes;
AWS does not document the spelling) with the service's message as the cause.
"""

from __future__ import annotations

from typing import Any, Final, cast

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events import (
    StateTaskServiceEvents,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from taskrail.local.services.patching import Check, Patch, Source, is_patched, original, patch, unpatch

__all__ = [
    "NEVER_MATCHED",
    "PATCHES",
    "SDK_SERVICE_ERROR_NAMES",
    "install_eventbridge_task_errors",
    "install_late_results_dropped",
    "install_sdk_error_names",
    "install_uncatchable_errors",
    "uninstall_sdk_error_names",
    "uninstall_uncatchable_errors",
]

#: matched by no Retrier or Catcher
NEVER_MATCHED: Final = frozenset({"States.Runtime"})
#: not matched by States.ALL (a Retrier/Catcher naming it still matches)
NOT_MATCHED_BY_ALL: Final = frozenset({"States.DataLimitExceeded"})
_ALL: Final = "States.ALL"


def _name_of(error_name: Any) -> str:
    return str(getattr(error_name, "error_name", error_name))


def _error_equals(self: ErrorEqualsDecl, env: Environment) -> None:
    error_name = env.stack[-1]
    name = _name_of(error_name)
    listed = {_name_of(n) for n in self.error_names}
    if name in NEVER_MATCHED or (name in NOT_MATCHED_BY_ALL and name not in listed):
        env.stack.pop()
        env.stack.append(False)
        return
    original(ErrorEqualsDecl, "_eval_body")(self, env)


def install_uncatchable_errors() -> None:
    if not is_patched(ErrorEqualsDecl, "_eval_body"):
        patch(ErrorEqualsDecl, "_eval_body", _error_equals)


def uninstall_uncatchable_errors() -> None:
    if is_patched(ErrorEqualsDecl, "_eval_body"):
        unpatch(ErrorEqualsDecl, "_eval_body")


def _states_all_is_a_string_name() -> bool:
    return _name_of(ErrorEqualsDecl._STATE_ALL_ERROR) == _ALL


UNCATCHABLE_ERRORS: Final = Patch(
    "States.Runtime and States.DataLimitExceeded are not caught by States.ALL",
    depends=(
        Source(
            "moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl.ErrorEqualsDecl._eval_body",
            lambda: original(ErrorEqualsDecl, "_eval_body"),
            ("error_name: ErrorName = env.stack.pop()", "self.error_names", "env.stack.append(res)"),
        ),
        Check(
            "moto.stepfunctions.parser.asl.component.common.error_name.error_name.ErrorName.error_name",
            _states_all_is_a_string_name,
            "ErrorName.error_name is no longer the error's name string",
        ),
    ),
    install=install_uncatchable_errors,
    uninstall=uninstall_uncatchable_errors,
)

#: the Pascal-case service name of an aws-sdk error, by the service name in the Resource
SDK_SERVICE_ERROR_NAMES: Final = {"acmpca": "AcmPca", "dynamodb": "DynamoDb", "s3": "S3", "sfn": "Sfn"}
_NORMALISE: Final = "_normalise_service_error_name"


def _sdk_service_error_name(service_name: str) -> str:
    known = SDK_SERVICE_ERROR_NAMES.get(service_name.lower())
    return known if known is not None else service_name[:1].upper() + service_name[1:]


def install_sdk_error_names() -> None:
    if not is_patched(StateTaskServiceAwsSdk, _NORMALISE):
        patch(StateTaskServiceAwsSdk, _NORMALISE, staticmethod(_sdk_service_error_name))


def uninstall_sdk_error_names() -> None:
    if is_patched(StateTaskServiceAwsSdk, _NORMALISE):
        unpatch(StateTaskServiceAwsSdk, _NORMALISE)


def _moto_sdk_error_name_table() -> bool:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_aws_sdk

    return dict(state_task_service_aws_sdk._SERVICE_ERROR_NAMES) == {"dynamodb": "DynamoDb", "sfn": "Sfn"}


SDK_ERROR_NAMES: Final = Patch(
    "AWS SDK integration errors are ServiceName.ErrorName in Pascal case (S3.NoSuchBucketException)",
    depends=(
        Source(
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk"
            ".StateTaskServiceAwsSdk._from_error",
            lambda: original(StateTaskServiceAwsSdk, "_from_error"),
            ("self._normalise_service_error_name(", "self._normalise_exception_name(norm_service_name, ex)"),
        ),
        Check(
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk"
            "._SERVICE_ERROR_NAMES",
            _moto_sdk_error_name_table,
            "moto's table of Pascal-case service names changed: re-check SDK_SERVICE_ERROR_NAMES",
        ),
    ),
    install=install_sdk_error_names,
    uninstall=uninstall_sdk_error_names,
)

_AFTER: Final = "_after_eval_execution"


def _after_eval_execution(self: StateTaskService, env: Environment, *args: Any, **kwargs: Any) -> None:
    if env.is_frame() and not env.is_running():
        return  # timed out (the frame was ended): the state has already failed with States.Timeout
    original(StateTaskService, _AFTER)(self, env, *args, **kwargs)


def install_late_results_dropped() -> None:
    if not is_patched(StateTaskService, _AFTER):
        patch(StateTaskService, _AFTER, _after_eval_execution)


def uninstall_late_results_dropped() -> None:
    if is_patched(StateTaskService, _AFTER):
        unpatch(StateTaskService, _AFTER)


LATE_RESULTS_DROPPED: Final = Patch(
    "a task result that arrives after TimeoutSeconds does not succeed the state",
    depends=(
        Source(
            "moto.stepfunctions.parser.asl.component.state.exec.execute_state.ExecutionState._evaluate_with_timeout",
            lambda: ExecutionState._evaluate_with_timeout,
            ("frame: Environment = env.open_frame()", "terminated_event.wait(timeout_seconds)", "frame.set_ended()"),
        ),
        Source(
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service"
            ".StateTaskService._after_eval_execution",
            lambda: original(StateTaskService, _AFTER),
            ("HistoryEventType.TaskSucceeded",),
        ),
        Check(
            "moto.stepfunctions.parser.asl.eval.environment.Environment.is_frame/is_running",
            lambda: callable(Environment.is_frame) and callable(Environment.is_running),
            "Environment still has is_frame() and is_running()",
        ),
    ),
    install=install_late_results_dropped,
    uninstall=uninstall_late_results_dropped,
)

EVENTBRIDGE_CLIENT_ERROR: Final = "EventBridge.AmazonEventBridgeException"


def _events_from_error(self: StateTaskServiceEvents, env: Environment, ex: Exception) -> Any:
    if isinstance(ex, ClientError):
        message = ex.response.get("Error", {}).get("Message", "")
        code = ex.response.get("Error", {}).get("Code", "")
        status = ex.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        cause = f"{message} (Service: EventBridge, Status Code: {status}, Error Code: {code})"
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(EVENTBRIDGE_CLIENT_ERROR),
            event_type=HistoryEventType.TaskFailed,
            event_details=cast(
                EventDetails,
                {
                    "taskFailedEventDetails": TaskFailedEventDetails(
                        error=EVENTBRIDGE_CLIENT_ERROR,
                        cause=cause,
                        resource=self._get_sfn_resource(),
                        resourceType=self._get_sfn_resource_type(),
                    )
                },
            ),
        )
    return original(StateTaskServiceEvents, "_from_error")(self, env, ex)


def install_eventbridge_task_errors() -> None:
    if not is_patched(StateTaskServiceEvents, "_from_error"):
        patch(StateTaskServiceEvents, "_from_error", _events_from_error)


def uninstall_eventbridge_task_errors() -> None:
    if is_patched(StateTaskServiceEvents, "_from_error"):
        unpatch(StateTaskServiceEvents, "_from_error")


EVENTBRIDGE_TASK_ERRORS: Final = Patch(
    "a PutEvents refused by EventBridge is a task failure (EventBridge.AmazonEventBridgeException), not States.Runtime",
    depends=(
        Source(
            "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events"
            ".StateTaskServiceEvents._from_error",
            lambda: original(StateTaskServiceEvents, "_from_error"),
            ("isinstance(ex, SfnFailedEntryCountException)", "return super()._from_error(env=env, ex=ex)"),
        ),
        Source(
            "moto.stepfunctions.parser.asl.component.state.exec.execute_state.ExecutionState._from_error",
            lambda: ExecutionState._from_error,
            ("StatesErrorNameType.StatesRuntime",),
        ),
    ),
    install=install_eventbridge_task_errors,
    uninstall=uninstall_eventbridge_task_errors,
)

PATCHES: Final = (UNCATCHABLE_ERRORS, SDK_ERROR_NAMES, LATE_RESULTS_DROPPED, EVENTBRIDGE_TASK_ERRORS)
