"""AWS Lambda: every Invoke reaches the function that really runs it (moto's no-Docker backend, patched).

:func:`lambda_invoker` (or :func:`install_lambda_invoker` for a long-running stack) replaces
``moto.awslambda_simple.models.LambdaSimpleBackend.invoke`` (the backend moto uses when the config has
``{"lambda": {"use_docker": False}}``) with a call to ``invoker(function_name, payload, qualifier)``.
moto's HTTP layer (``moto.awslambda.responses.LambdaResponse.invoke``) returns our bytes as the ``Payload`` and
copies ``response_headers`` into the response, so an :class:`InvokeOutcome` with ``function_error="Unhandled"``
becomes the ``X-Amz-Function-Error`` header; the Step Functions interpreter then reads ``errorType`` from the
payload and the workflow sees that name as ``Error``. :class:`LambdaThrottled` / :class:`LambdaServiceError`
are raised to moto as ``AWSError`` (HTTP 429 / 500) and the workflow sees ``Lambda.TooManyRequestsException`` /
``Lambda.ServiceException``. The function must exist (``ResourceNotFoundException`` otherwise, as on AWS;
moto's stock simple backend would echo the payload for any name). moto's ``create_function`` needs no Docker
but does need an IAM role that exists in moto's IAM of the same account (``put_function`` looks it up; a
missing role is ``InvalidParameterValueException``): see :func:`create_stub_function`.

moto bug, fixed here: ``LambdaResponse.invoke`` reads the query parameter ``qualifier`` but the Invoke API's is
``Qualifier`` (botocore's model: ``location: querystring, locationName: Qualifier``), so a separate
``Qualifier`` never reached the backend. :func:`_invoke_with_qualifier` hands it on, as AWS does; a qualifier
inside ``FunctionName`` (``name:alias`` or a qualified ARN) wins, as before. ``InvocationType=Event`` runs the
invoker on a daemon thread; ``DryRun`` does not call it.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import moto.awslambda.responses as _lambda_responses
import moto.awslambda.utils as _lambda_utils
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.exceptions import AWSError

from taskrail.local.services.patching import Patch, Signature, Source, lock, original, patch, unpatch

__all__ = [
    "PATCHES",
    "InvokeOutcome",
    "LambdaInvokeError",
    "LambdaInvoker",
    "LambdaServiceError",
    "LambdaThrottled",
    "create_stub_function",
    "install_lambda_invoker",
    "lambda_invoker",
    "uninstall_lambda_invoker",
]

LOG = logging.getLogger(__name__)


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
        moto_invoke = original(LambdaSimpleBackend, "invoke")
        return moto_invoke(self, function_name, qualifier, body, headers, response_headers)
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
    return original(_lambda_responses.LambdaResponse, "invoke")(self)


def install_lambda_invoker(invoker: LambdaInvoker) -> None:
    """Route every Lambda invoke of moto's no-Docker backend to ``invoker`` (replaces any previous one)."""
    global _invoker  # noqa: PLW0603
    with lock:
        _invoker = invoker
        patch(LambdaSimpleBackend, "invoke", _hooked_lambda_invoke)
        patch(_lambda_responses.LambdaResponse, "invoke", _invoke_with_qualifier)


def uninstall_lambda_invoker() -> None:
    """Give moto back its echoing ``LambdaSimpleBackend.invoke``."""
    global _invoker  # noqa: PLW0603
    with lock:
        _invoker = None
        unpatch(LambdaSimpleBackend, "invoke")
        unpatch(_lambda_responses.LambdaResponse, "invoke")


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


PATCHES: Final = (
    Patch(
        "lambda invoker (with the Invoke API's Qualifier)",
        depends=(
            Signature(
                "moto.awslambda_simple.models.LambdaSimpleBackend.invoke",
                lambda: original(LambdaSimpleBackend, "invoke"),
                ("self", "function_name", "qualifier", "body", "headers", "response_headers"),
            ),
            Signature(
                "moto.core.exceptions.AWSError.__init__",
                lambda: AWSError.__init__,
                ("self", "message", "exception_type", "status"),
            ),
            Source(
                "moto.awslambda.responses.LambdaResponse.invoke",
                lambda: original(_lambda_responses.LambdaResponse, "invoke"),
                (
                    'qualifier = self._get_param("qualifier")',
                    "self.backend.invoke(",
                    "function_name, qualifier, self.body, self.headers, response_headers",
                ),
            ),
            Source(
                "moto.awslambda.utils.get_backend",
                lambda: _lambda_utils.get_backend,
                ('get("use_docker", True) is False', "lambda_simple_backends"),
            ),
        ),
        uninstall=uninstall_lambda_invoker,
    ),
)
