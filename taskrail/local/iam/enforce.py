"""The local AWS endpoint's authorizer: every request signed by a template role is evaluated against the template.

After SigV4 has said *who* signed (``taskrail.local.guard.AwsEndpointGuard``), :class:`Enforcer` says whether
that principal may: the request is mapped to its IAM action(s) and resource(s) (:mod:`.actions`), evaluated with
the role's identity policies and the resource's policy (:mod:`.evaluate`, :mod:`.policies`), recorded in the IAM
log, and a denial is answered as the service answers it on AWS:

* DynamoDB and DynamoDB Streams: HTTP 400 ``AccessDeniedException``
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html);
* Step Functions, EventBridge, KMS (JSON 1.0/1.1): HTTP 400 ``AccessDeniedException`` (each API's "Common Errors");
* SQS (JSON, query-compatible): HTTP 403 ``AccessDenied`` (botocore reads the code from ``x-amzn-query-error``);
* SNS (query): HTTP 403 ``AuthorizationError`` (the SNS API reference's error for a denied ``Publish``);
* S3: HTTP 403 ``AccessDenied`` (https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html);
* Lambda (REST-JSON): HTTP 403 ``AccessDeniedException``.

The message is IAM's: ``User: <session ARN> is not authorized to perform: <action> on resource: <ARN> because no
identity-based policy allows the <action> action`` (or ``with an explicit deny in a resource-based policy``).

**Transport** (``aws:SecureTransport``): the local endpoint speaks plain HTTP on loopback only; every client of it
is an AWS SDK that uses HTTPS against AWS. The key is evaluated as ``true`` by default, what the same client's call
is on AWS, so the template's TLS-only ``Deny`` statements are evaluated (and hold: a test evaluates the same call
with ``false`` and sees the explicit deny), not skipped. ``secure_transport=False`` evaluates it as the local
socket literally is.

Callers that are not template roles (the provisioner, console and CLI with the stack's service key, the local
users) act as the account's administrator does, unevaluated. moto's interpreter's fixed key is refused while
enforcement is on: a service call of a state machine must be made as the state machine's role.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from taskrail.local.guard import AwsError
from taskrail.local.iam.actions import Access, ApiCall, HttpRequest, Unmapped, describe
from taskrail.local.iam.coverage import Coverage, GrantUse, Reason, explain, load_reasons, statement_of, unexercised
from taskrail.local.iam.evaluate import (
    Decision,
    Outcome,
    Principal,
    Request,
    UnsupportedPolicy,
    denial_message,
    evaluate,
)
from taskrail.local.iam.policies import TemplatePolicies
from taskrail.local.iam.principals import RoleCredential, account_of

__all__ = ["Denied", "Enforcer", "IamLog", "IamRecord", "access_denied", "prune_iam_logs"]

log = logging.getLogger("taskrail.local.iam")


@dataclass(frozen=True)
class IamRecord:
    principal: str  # the role ARN (sessions of one role are one principal)
    session: str
    service: str
    operation: str
    action: str
    resource: str
    allowed: bool
    decided_by: str  # "PolicyLogicalId[index]" or why it was denied


class IamLog:
    """Every authorization decision of the endpoint, in order; thread-safe; optionally appended to a JSONL file."""

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._records: list[IamRecord] = []
        self._path = path
        self._file: TextIO | None = None  # opened at the first record, kept open (line-buffered)

    def add(self, record: IamRecord) -> None:
        line = json.dumps(asdict(record)) + "\n"  # outside the lock: every AWS call of the stack passes here
        with self._lock:
            self._records.append(record)
            if self._path is not None:
                if self._file is None:
                    self._file = self._path.open("a", buffering=1)
                self._file.write(line)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    @property
    def records(self) -> list[IamRecord]:
        with self._lock:
            return list(self._records)

    def denials(self) -> list[IamRecord]:
        return [r for r in self.records if not r.allowed]


@dataclass(frozen=True)
class Denied:
    request: Request
    decision: Decision | None  # None: the request could not be mapped or evaluated
    message: str


def _principal(credential: RoleCredential) -> Principal:
    return Principal(credential.arn, account_of(credential.role_arn), role_arn=credential.role_arn)


class Enforcer:
    def __init__(
        self,
        policies: TemplatePolicies,
        *,
        secure_transport: bool = True,
        iam_log: IamLog | None = None,
        refused_keys: Mapping[str, str] | None = None,
        grant_use: GrantUse | None = None,
    ) -> None:
        self.policies = policies
        self.secure_transport = secure_transport
        self.log = iam_log or IamLog()
        self.use = grant_use or GrantUse()
        # access key -> why it is refused while enforcing (moto's interpreter's fixed key)
        self._refused = dict(refused_keys or {})

    def check(self, credential: RoleCredential, call: ApiCall) -> Denied | None:
        """Evaluate every access of ``call`` as ``credential``'s role; the first denial, or None if all allowed."""
        principal = _principal(credential)
        context = {
            "aws:SecureTransport": self.secure_transport,
            "aws:PrincipalArn": credential.role_arn,
            "aws:PrincipalAccount": principal.account,
            "aws:PrincipalType": "AssumedRole",
            **call.context,
        }
        identity = self.policies.identity_policies(credential.role_arn)
        for access in call.accesses:
            request = Request(principal, access.action, access.resource, context)
            try:
                decision = evaluate(request, identity, self.policies.resource_policies(access.resource))
            except UnsupportedPolicy as error:
                self._record(credential, call, request, allowed=False, why=f"unsupported policy: {error}")
                return Denied(request, None, f"{denial_message(request, Decision(Outcome.IMPLICIT_DENY))} ({error})")
            self._record(credential, call, request, allowed=decision.allowed, why=decision.decided_by)
            if not decision.allowed:
                return Denied(request, decision, denial_message(request, decision))
        return None

    def _record(self, credential: RoleCredential, call: ApiCall, request: Request, *, allowed: bool, why: str) -> None:
        self.log.add(
            IamRecord(
                credential.role_arn, credential.session_name, call.service, call.operation,
                request.action, request.resource, allowed, why,
            )
        )  # fmt: skip
        if not allowed:
            log.warning("IAM denied %s: %s on %s (%s)", credential.arn, request.action, request.resource, why)
        else:
            self.note_use(why, request.action)

    def note_use(self, decided_by: str, action: str) -> None:
        """Mark the statement that allowed ``action`` as exercised (coverage of the template's grants)."""
        statement = statement_of(decided_by)
        grant = self.policies.grant_at(*statement) if statement else None
        if grant is not None:
            self.use.note(grant, action)

    def __call__(self, credential: Any, environ: Mapping[str, Any], request: Any) -> AwsError | None:
        """The guard's authorizer: ``request`` is the guard's verified request (method, headers, body, raw path)."""
        access_key = getattr(credential, "access_key_id", "")
        if access_key in self._refused:
            return access_denied(environ, self._refused[access_key])
        if not isinstance(credential, RoleCredential):
            return None
        scope = _scope(request.header("Authorization")) if request.header("Authorization") else _link_scope(request)
        http = HttpRequest(
            method=request.method,
            host=request.header("Host") or "",
            path=request.raw_path,
            query=request.raw_query,
            headers={k.lower(): v for k, v in request.headers},
            body=request.body,
            service=scope[1],
            region=scope[0],
        )
        try:
            call = describe(http, account_of(credential.role_arn))
        except Unmapped as error:
            principal = _principal(credential)
            message = (
                f"User: {principal.arn} is not authorized: the local IAM evaluator cannot map this request ({error})"
            )
            self.log.add(
                IamRecord(credential.role_arn, credential.session_name, http.service, "?", "?", "?", False, str(error))
            )
            return access_denied(environ, message)
        denied = self.check(credential, call)
        return None if denied is None else access_denied(environ, denied.message)


def _scope(header: str | None) -> tuple[str, str]:
    for part in (header or "").partition(" ")[2].split(","):
        key, _, value = part.strip().partition("=")
        scope = value.split("/")
        if key.strip() == "Credential" and len(scope) == 5:
            return scope[2], scope[3]
    return "", ""


def _link_scope(request: Any) -> tuple[str, str]:
    """The scope of a presigned (query-string) request: the region and service of its X-Amz-Credential."""
    credential = dict(parse_qsl(request.raw_query, keep_blank_values=True)).get("X-Amz-Credential", "")
    scope = credential.split("/")
    return (scope[2], scope[3]) if len(scope) == 5 else ("", "")


def access_denied(environ: Mapping[str, Any], message: str) -> AwsError:
    """AWS's access-denied answer in the protocol (and with the code) of the service the request was for."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    presigned = "X-Amz-Signature=" in str(environ.get("QUERY_STRING", ""))  # only S3 takes presigned requests
    service = _scope(environ.get("HTTP_AUTHORIZATION"))[1] or ("s3" if presigned else "")
    request_id = str(uuid.uuid4())
    extra: list[tuple[str, str]] = []
    if target.startswith("AmazonSQS."):
        status, content_type = 403, "application/x-amz-json-1.0"
        body = json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException", "message": message})
        extra = [("x-amzn-query-error", "AccessDenied;Sender")]
    elif target:
        status = 400
        content_type = "application/x-amz-json-1.0" if target.startswith("DynamoDB") else "application/x-amz-json-1.1"
        body = json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException", "message": message})
    elif service == "s3":
        status, content_type = 403, "application/xml"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>AccessDenied</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    elif service in ("sns", "sts", "iam"):
        code = "AuthorizationError" if service == "sns" else "AccessDenied"
        status, content_type = 403, "text/xml"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    else:  # REST-JSON: Lambda, Scheduler, Pipes
        status, content_type = 403, "application/json"
        body = json.dumps({"Type": "User", "message": message})
        extra = [("x-amzn-ErrorType", "AccessDeniedException")]
    encoded = body.encode()
    headers = [("Content-Type", content_type), ("Content-Length", str(len(encoded))), ("x-amzn-RequestId", request_id)]
    return AwsError(status, headers + extra, encoded)


#: In the stack's log folder, per stack process (several stacks may share the folder): every decision (one JSON
#: object a line) and the template's grants, for ``python -m taskrail.local.iam.report``.
DECISIONS_FILE = "iam-decisions-{pid}.jsonl"
GRANTS_FILE = "iam-grants-{pid}.json"
#: How many stopped stacks' IAM files :func:`prune_iam_logs` keeps (the newest); a running stack's are always kept.
KEEP_IAM_LOGS = 20
_IAM_FILE = re.compile(r"^iam-[a-z]+-(?P<pid>\d+)\.jsonl?$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def prune_iam_logs(log_dir: Path, keep: int = KEEP_IAM_LOGS, alive: Callable[[int], bool] = _alive) -> list[Path]:
    """Delete the ``iam-*-<pid>`` files of stacks no longer running, all but the ``keep`` most recent (by their
    newest file); a running stack's files stay, whatever their age. One stack process writes two files, and a day
    of test runs leaves hundreds. The deleted paths."""
    by_pid: dict[int, list[Path]] = {}
    for path in log_dir.glob("iam-*-*"):
        match = _IAM_FILE.match(path.name)
        if match is not None:
            by_pid.setdefault(int(match["pid"]), []).append(path)

    def newest(pid: int) -> float:
        return max((p.stat().st_mtime for p in by_pid[pid] if p.exists()), default=0.0)

    stopped = sorted((pid for pid in by_pid if not alive(pid)), key=newest, reverse=True)
    deleted = []
    for pid in stopped[keep:]:
        for path in by_pid[pid]:
            path.unlink(missing_ok=True)
            deleted.append(path)
    return deleted


#: The opt-out, for debugging only: ``TASKRAIL_IAM=off`` lets every principal do everything (as before issue 12).
IAM_ENV = "TASKRAIL_IAM"
INTERPRETER_REFUSED = (
    "moto's Step Functions interpreter signed with its fixed key: with IAM enforcement on, a state machine's service "
    "integrations are signed as the state machine's role (taskrail.local.services.stepfunctions)"
)


class LocalIam:
    """IAM for one local stack: the endpoint's authorizer from the start, the template's policies once provisioned.

    Until :meth:`load` (while the provisioner creates the resources as the account's administrator), nothing is
    evaluated. With a ``log_dir``, the IAM files of stopped stacks beyond the newest :data:`KEEP_IAM_LOGS` are
    deleted first (:func:`prune_iam_logs`). ``enforce=False`` (or ``TASKRAIL_IAM=off``) still records every
    decision of a role's request in the log, but lets it through.
    """

    def __init__(self, *, enforce: bool | None = None, log_dir: Path | None = None, secure_transport: bool = True):
        self.enforce = enforce if enforce is not None else os.environ.get(IAM_ENV, "on").lower() != "off"
        self.log_dir = log_dir
        self._files = {"pid": os.getpid()}
        decisions = log_dir / DECISIONS_FILE.format(**self._files) if log_dir is not None else None
        if log_dir is not None and decisions is not None:
            prune_iam_logs(log_dir)
            decisions.unlink(missing_ok=True)
        self.log = IamLog(decisions)
        self.secure_transport = secure_transport
        self.policies = TemplatePolicies()
        self.use = GrantUse()  # the statements' exercised actions, across reloads of the policies
        self.roles: Any = None  # StackRoles, once loaded
        self._enforcer: Enforcer | None = None
        self._endpoint = ""
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()

    def credentials(self, base: Mapping[str, Any]) -> Mapping[str, Any]:
        """The endpoint's credentials: ``base`` plus every role session's derived key."""
        from taskrail.local.iam.principals import RoleCredentials

        return RoleCredentials(base)

    def load(self, template: Mapping[str, Any], resources: Any) -> None:
        from taskrail.local.iam.roles import StackRoles
        from taskrail.local.users import MOTO_INTERPRETER

        self.policies = TemplatePolicies.from_template(template, resources)
        self.roles = StackRoles.from_template(template, resources)
        refused = {MOTO_INTERPRETER.access_key_id: INTERPRETER_REFUSED} if self.enforce else {}
        self._enforcer = Enforcer(
            self.policies,
            secure_transport=self.secure_transport,
            iam_log=self.log,
            refused_keys=refused,
            grant_use=self.use,
        )
        if self.log_dir is not None:
            grants = [asdict(g) for g in self.policies.grants()]
            (self.log_dir / GRANTS_FILE.format(**self._files)).write_text(json.dumps(grants, indent=1))

    def __call__(self, credential: Any, environ: Mapping[str, Any], request: Any) -> AwsError | None:
        enforcer = self._enforcer
        if enforcer is None:
            return None
        answer = enforcer(credential, environ, request)
        return answer if self.enforce else None

    def service_delivery(self, service: str, action: str, resource: str, source_arn: str) -> str | None:
        """A delivery an AWS service makes on behalf of ``source_arn`` (a rule's target, an alarm's action),
        evaluated against the resource's policy, and against the KMS key policy when the resource is encrypted
        (the service then needs ``kms:GenerateDataKey`` on the key). The denial message, or None if allowed."""
        if self._enforcer is None:
            return None
        principal = Principal.for_service(service, account_of(source_arn))
        context = {
            "aws:SecureTransport": self.secure_transport,
            "aws:SourceArn": source_arn,
            "aws:SourceAccount": principal.account,
        }
        accesses = [(action, resource)]
        key = self.policies.keys.get(resource)
        if key is not None:
            accesses.append(("kms:GenerateDataKey", key))
        for needed, arn in accesses:
            request = Request(principal, needed, arn, context)
            decision = evaluate(request, [], self.policies.resource_policies(arn))
            service_name, operation = needed.split(":", 1)
            self.log.add(
                IamRecord(
                    service, source_arn, service_name, operation, needed, arn, decision.allowed, decision.decided_by
                )
            )
            if not decision.allowed:
                log.warning("IAM denied %s for %s: %s on %s", service, source_arn, needed, arn)
                return denial_message(request, decision) if self.enforce else None
            if self._enforcer is not None:
                self._enforcer.note_use(decision.decided_by, needed)
        return None

    def role_delivery(self, role_arn: str, action: str, resource: str) -> str | None:
        """A call an AWS service makes with a role it assumes (a rule target's ``RoleArn`` starting a state machine),
        evaluated as that role's session against its identity policies: IAM's denial message, or None if allowed."""
        enforcer, roles = self._enforcer, self.roles
        if enforcer is None or roles is None:
            return None
        credential = roles.by_role().get(role_arn)
        if credential is None:
            return f"the role {role_arn} is not one the template defines" if self.enforce else None
        service, operation = action.split(":", 1)
        denied = enforcer.check(credential, ApiCall(service, operation, (Access(action, resource),)))
        return denied.message if denied is not None and self.enforce else None

    def coverage(self, reasons: Iterable[Reason] | None = None) -> Coverage:
        """The template's grants this stack's calls never exercised, each with the reason it is kept (if any)."""
        grants = self.policies.grants()
        return explain(unexercised(grants, self.use.actions), load_reasons() if reasons is None else reasons)

    # -- each principal's identity, for the parts of the stack that act as one ---------------------------

    def start(self, endpoint: str) -> None:
        """The endpoint the principals' clients call (once the server is up)."""
        self._endpoint = endpoint

    def function_environments(self) -> dict[str, dict[str, str]]:
        """Function name -> its execution role's credentials, as Lambda puts them in the environment."""
        return {name: credential.environment() for name, credential in self.roles.functions.items()}

    def clients_as(self, credential: RoleCredential) -> Any:
        """A boto3 client factory (service name -> client) of the local endpoint, signed as ``credential``."""
        import boto3

        from taskrail.local.region import REGION

        def client(service: str) -> Any:
            key = (credential.access_key_id, service)
            with self._clients_lock:
                found = self._clients.get(key)
                if found is None:
                    found = boto3.client(
                        service, endpoint_url=self._endpoint, region_name=REGION, **credential.client_kwargs()
                    )
                    self._clients[key] = found
            return found

        return client

    def botocore_credentials(self, role_arn: str) -> Any:
        """botocore credentials of a session of ``role_arn`` (None for a role the template does not define)."""
        from botocore.credentials import Credentials

        credential = self.roles.by_role().get(role_arn) if self.roles is not None else None
        if credential is None:
            return None
        return Credentials(credential.access_key_id, credential.secret_access_key, credential.session_token)

    def interpreter_client(self, region: str, service: str, role_arn: str) -> Any:
        """The Step Functions interpreter's client for a state machine's ``role_arn``, signed as that role."""
        from taskrail.local.iam.interpreter import role_client

        credential = self.roles.by_role().get(role_arn) if self.roles is not None else None
        return None if credential is None else role_client(region, service, credential)
