"""The local API Gateway: serves the REST API of the *synthesized template* on 127.0.0.1, as AWS does.

Nothing here is a hand copy of the API. Routes, authorization, validators, models, mapping templates,
integration responses and gateway responses are all read from the CloudFormation template
(``AWS::ApiGateway::*`` resources) and its intrinsics are resolved with the provisioner's
:class:`~taskrail.local.provision.Resolver`, so the table name in a request template is the local table.

Public API
----------
``LocalApiGateway(template, resolve, aws_endpoint_url, *, host="127.0.0.1", port=0, users=API_CALLERS)``
    ``start() -> str``      binds 127.0.0.1 (any other host is refused) and returns ``http://127.0.0.1:PORT/v1``
                            (the stage is part of the URL, as on AWS)
    ``stop()``              stops serving; also a context manager (``with LocalApiGateway(...) as api:``)
    ``url``                 the base URL once started; ``bound_address`` the socket's (host, port)
    ``routes()``            ``[(method, resource_path), ...]``, e.g. ``("GET", "/tasks/{taskId}")``
    ``handle(GatewayRequest) -> GatewayResponse``  the whole pipeline without HTTP (the server calls it)
    ``internal_errors``     the messages of every 500 answered so far (tests assert it stays empty)
``ApiDefinition.from_template(template, resolve)``  the parsed API (``stage``, ``methods``, ``match()``)
``SigV4Verifier``           the IAM (SigV4) authentication on its own

The request pipeline (the order API Gateway applies)
----------------------------------------------------
1. Payload limit: a body over 10 MB is ``413 {"message": "Request Too Long"}`` (REQUEST_TOO_LARGE).
2. Route: the path after the stage is matched against the resource tree (literal segments win over
   ``{param}``, ``{param}`` over ``{proxy+}``); an unknown resource or a method the resource does not
   have is ``403 {"message": "Missing Authentication Token"}``, as AWS answers for IAM-authorized APIs.
3. IAM authorization (``AuthorizationType: AWS_IAM``): SigV4, see below. The caller becomes
   ``$context.identity`` (``user`` = the principal id, ``userArn``, ``caller``, ``accessKey``,
   ``accountId``, ``sourceIp``, ``userAgent``). For an assumed-role session (temporary ``ASIA...`` key and
   its session token, ``users.ROLES``) ``user`` and ``caller`` are ``ROLEID:session-name`` and ``userArn`` is
   ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/session-name``, as AWS fills them (the API Gateway mapping template
   reference, https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html;
   IAM's ``aws:userid`` for a role session is ``role-id:caller-specified-role-name``).
4. Request validation (the method's ``RequestValidatorId``): required ``method.request.*`` parameters
   (BAD_REQUEST_PARAMETERS) and the body against the method's model for the request's content type,
   JSON Schema draft 4 with ``jsonschema`` (BAD_REQUEST_BODY; a body that is not JSON also fails here).
   ``$context.error.validationErrorString`` reads like AWS's (json-schema-validator) messages, e.g.
   ``[object has missing required properties (["type"])]``, and is JSON-string-escaped so a template can
   quote it (user data in it cannot break the JSON of the answer).
5. Request template by Content-Type (media type without parameters; no Content-Type means
   ``application/json``, as on AWS). No template for the type: ``PassthroughBehavior`` NEVER (or
   WHEN_NO_TEMPLATES with templates defined) is ``415 {"message": "Unsupported Media Type"}``, otherwise the
   body passes through unchanged.
6. Integration ``Type: AWS`` with ``Uri: arn:aws:apigateway:{region}:{service}:action/{Action}``: the rendered
   body is POSTed to ``aws_endpoint_url`` as the service's JSON protocol (for DynamoDB
   ``X-Amz-Target: DynamoDB_20120810.<Action>``, ``Content-Type: application/x-amz-json-1.0``), SigV4-signed
   for the service with the stack's service credential (``users.STACK_SERVICE``). The protocol details come from
   botocore's service model. ``Type: MOCK`` is supported too (status code from the rendered request). A Lambda
   custom integration (``Uri: arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations``)
   is Lambda's Invoke on ``aws_endpoint_url``, signed as the integration's role.
7. Integration response: the first whose ``SelectionPattern`` (a Java regex) matches the whole backend status
   code (for a Lambda integration: a function error's ``errorMessage``; a function that returned without error
   gets the default), else the one without a pattern; its template for the request's ``Accept`` (default
   ``application/json``) renders with ``$input`` = the backend body. Status = ``responseOverride.status`` if
   the template set it, else the integration response's ``StatusCode``.
Anything unexpected (a ``VtlError``, no matching integration response, a bug) is logged with its traceback,
recorded in ``internal_errors`` and answered ``500 {"message": "Internal server error"}``.
Gateway responses (``AWS::ApiGateway::GatewayResponse``) shape every error answer; as on AWS their
templates are *not* VTL, only ``$context.*`` / ``$stageVariables.*`` (the Stage's ``Variables``) are
substituted; their headers are ``'literals'``, ``method.request.header.X`` or ``method.request.querystring.X``
(a path parameter maps to nothing). Types without one use
``DEFAULT_4XX``/``DEFAULT_5XX`` if defined, else AWS's default ``{"message":$context.error.messageString}``.

SigV4 verification (:mod:`taskrail.local.sigv4`, shared with the local AWS endpoint)
------------------------------------------------------------------------------------
The ``Authorization`` header ``AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/execute-api/aws4_request,
SignedHeaders=a;b, Signature=hex`` is parsed; the access key is looked up in ``users``; the credential scope
must name the API's region, ``execute-api``, ``aws4_request`` and the date of ``X-Amz-Date`` (or ``Date``),
which must be within 15 minutes of now; ``host`` must be signed. The signature is then *recomputed with
botocore*: an ``AWSRequest`` with the same method, URL (the raw request target, so the canonical path is
botocore's), exactly the signed headers with the values received, and the body, is given to a
``SigV4Auth`` (subclassed only so that the signed-header set is the client's and the payload hash is always the
SHA-256 of the received body) whose ``canonical_request``/``string_to_sign``/``signature`` run with the
request's timestamp. The result is compared with ``hmac.compare_digest``. The canonical query string is tried
in botocore's form (raw pairs, sorted) and in AWS's strict form (decoded, re-encoded); either matching is
accepted. Answers, as AWS words them: no ``Authorization`` → ``Missing Authentication Token``; unknown key or a
session token → ``The security token included in the request is invalid.``; wrong signature → ``The request
signature we calculated does not match the signature you provided. ...`` (with the canonical string and
string-to-sign, as API Gateway includes them); stale → ``Signature expired: ...``; all 403. Query-string
(presigned) SigV4 is not supported.

Known deviations from AWS
-------------------------
* Throttling, usage plans, API keys, authorizers other than AWS_IAM/NONE, ``requestOverride`` applied to the
  integration request (it reaches the response template's ``$context`` only), binary media
  types and integration types other than AWS (JSON-protocol services, ``action/``) and MOCK are not
  emulated; a method with an unsupported integration answers 500 (a warning is logged at start).
* IAM *authorization* (policies allowing ``execute-api:Invoke``) is not evaluated: every known user may call
  every method. The integration's ``Credentials`` role signs the call (its local session, see taskrail/local/iam).
* Validation messages follow json-schema-validator's wording for the usual keywords (required,
  additionalProperties, type, pattern, min/maxLength, enum, minimum/maximum, min/maxItems); others use
  ``jsonschema``'s text. ``pattern`` uses ECMA 262 semantics for ``$`` (end of input only, unlike Python).
* Repeated query-string parameters or headers: the last value is used.
* Bodies are encoded as Java does (a lone surrogate becomes ``?``); header values set by templates lose CR/LF
  and non-Latin-1 characters (no response splitting).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import http.server
import json
import logging
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import botocore.session
import jsonschema
import jsonschema.validators
import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from jsonschema.exceptions import ValidationError

from taskrail.local import guard, sigv4
from taskrail.local.access_logs import AccessLogSpec, AccessLogWriter, render_line, request_time
from taskrail.local.region import ACCOUNT_ID, REGION
from taskrail.local.users import API_CALLERS, STACK_SERVICE, Caller, RoleSession
from taskrail.local.vtl import ApiRequest, RenderedRequest, render_integration_request, render_response

__all__ = [
    "ApiDefinition",
    "GatewayRequest",
    "GatewayResponse",
    "LocalApiGateway",
    "MethodSpec",
    "SigV4Verifier",
]

LOG = logging.getLogger(__name__)
ACCESS_LOG = logging.getLogger(f"{__name__}.access")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway's REST API payload limit
MAX_DRAIN_BYTES = 4 * MAX_PAYLOAD_BYTES  # an oversized body up to this is read (and dropped) before answering
INTEGRATION_TIMEOUT_SECONDS = 29.0  # API Gateway's default integration timeout
EXECUTE_API = "execute-api"
JSON_TYPE = "application/json"
LOOPBACK = "127.0.0.1"
# The integration's role is not assumed locally: the stack's service credential signs (taskrail/local/users.py).
BACKEND_CREDENTIALS = Credentials(STACK_SERVICE.access_key_id, STACK_SERVICE.secret_access_key)
INTERNAL_ERROR = "Internal server error"

# Gateway response types: default status code and the x-amzn-ErrorType AWS sends with them.
DEFAULT_STATUS: dict[str, int] = {
    "ACCESS_DENIED": 403,
    "API_CONFIGURATION_ERROR": 500,
    "BAD_REQUEST_BODY": 400,
    "BAD_REQUEST_PARAMETERS": 400,
    "EXPIRED_TOKEN": 403,
    "INTEGRATION_FAILURE": 504,
    "INTEGRATION_TIMEOUT": 504,
    "INVALID_SIGNATURE": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403,
    "REQUEST_TOO_LARGE": 413,
    "RESOURCE_NOT_FOUND": 404,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}
ERROR_TYPES: dict[str, str] = {
    "ACCESS_DENIED": "AccessDeniedException",
    "API_CONFIGURATION_ERROR": "InternalServerErrorException",
    "BAD_REQUEST_BODY": "BadRequestException",
    "BAD_REQUEST_PARAMETERS": "BadRequestException",
    "INTEGRATION_FAILURE": "InternalServerErrorException",
    "INTEGRATION_TIMEOUT": "InternalServerErrorException",
    "INVALID_SIGNATURE": "InvalidSignatureException",
    "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
    "REQUEST_TOO_LARGE": "RequestTooLargeException",
    "RESOURCE_NOT_FOUND": "NotFoundException",
    "UNSUPPORTED_MEDIA_TYPE": "UnsupportedMediaTypeException",
}
DEFAULT_GATEWAY_TEMPLATE = '{"message":$context.error.messageString}'
SERVICE_MODEL_NAMES = {"states": "stepfunctions", "execute-api": "apigateway"}  # ARN service → botocore name

Resolve = Callable[[Any], Any]


# --------------------------------------------------------------------------------------------------
# Errors answered by API Gateway itself (gateway responses)
# --------------------------------------------------------------------------------------------------


class GatewayError(Exception):
    """An answer API Gateway gives without (or instead of) the integration's: a gateway response type."""

    def __init__(
        self, response_type: str, message: str, *, validation: str | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message)
        self.response_type = response_type
        self.message = message
        self.validation = validation if validation is not None else message
        self.error_type = error_type or ERROR_TYPES.get(response_type, "")


# --------------------------------------------------------------------------------------------------
# The API, read from the template
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntegrationResponseSpec:
    status_code: str
    selection_pattern: re.Pattern[str] | None  # None: the default response
    templates: dict[str, str]
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IntegrationSpec:
    type: str  # AWS | MOCK | (unsupported: AWS_PROXY, HTTP, HTTP_PROXY)
    request_templates: dict[str, str]
    responses: tuple[IntegrationResponseSpec, ...]
    passthrough: str = "WHEN_NO_MATCH"
    service: str = ""
    action: str = ""
    region: str = REGION
    credentials: str = ""  # the role API Gateway assumes to call the service (Integration.Credentials)
    path: str = ""  # a path-style service URI (``lambda:path/2015-03-31/functions/{arn}/invocations``)


@dataclass(frozen=True)
class MethodSpec:
    http_method: str  # GET, POST, ... or ANY
    resource_path: str  # "/tasks/{taskId}"
    authorization_type: str
    integration: IntegrationSpec
    request_parameters: dict[str, bool] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)  # content type → JSON schema
    validate_body: bool = False
    validate_parameters: bool = False


@dataclass(frozen=True)
class GatewayResponseSpec:
    status_code: int | None
    templates: dict[str, str]
    parameters: dict[str, str]


def _ref(value: Any) -> str | None:
    """The logical id a ``{"Ref": id}`` (or ``Fn::GetAtt [id, ...]``) points at."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
    return None


def _is_root(value: Any) -> bool:
    target = value.get("Fn::GetAtt") if isinstance(value, dict) else None
    attribute = target[1] if isinstance(target, list) else str(target or "").partition(".")[2]
    return attribute == "RootResourceId"


def _segment_rank(segment: str) -> int:
    if segment.startswith("{") and segment.endswith("+}"):
        return 2
    return 1 if segment.startswith("{") and segment.endswith("}") else 0


def _match_segments(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for index, part in enumerate(pattern):
        rank = _segment_rank(part)
        if rank == 2:
            rest = segments[index:]
            if not rest or not any(rest):
                return None
            params[part[1:-2]] = "/".join(unquote(s) for s in rest)
            return params
        if index >= len(segments):
            return None
        if rank == 1:
            if not segments[index]:
                return None
            params[part[1:-1]] = unquote(segments[index])
        elif unquote(segments[index]) != part:
            return None
    return params if len(pattern) == len(segments) else None


class ApiDefinition:
    """One REST API of a template: stage, methods by resource path, gateway responses."""

    def __init__(
        self,
        stage: str,
        methods: list[MethodSpec],
        gateway_responses: dict[str, GatewayResponseSpec],
        stage_variables: Mapping[str, str] | None = None,
        access_log: AccessLogSpec | None = None,
    ) -> None:
        self.stage = stage
        self.access_log = access_log  # the Stage's AccessLogSetting (taskrail/local/access_logs.py)
        self.stage_variables = dict(stage_variables or {})  # the Stage's Variables: $stageVariables
        self.methods = methods
        self.gateway_responses = gateway_responses
        self._by_path: dict[str, dict[str, MethodSpec]] = {}
        for method in methods:
            self._by_path.setdefault(method.resource_path, {})[method.http_method] = method

    @classmethod
    def from_template(cls, template: dict[str, Any], resolve: Resolve, rest_api_id: str | None = None) -> ApiDefinition:
        return _TemplateReader(template, resolve, rest_api_id).read()

    def routes(self) -> list[tuple[str, str]]:
        return sorted((m.http_method, m.resource_path) for m in self.methods)

    def match(self, http_method: str, path: str) -> tuple[MethodSpec, dict[str, str]]:
        """The method for a request path (after the stage), with its path parameters; 403 if none."""
        segments = path.strip("/").split("/") if path.strip("/") else []
        candidates: list[tuple[tuple[int, ...], str, dict[str, str]]] = []
        for resource_path in self._by_path:
            pattern = resource_path.strip("/").split("/") if resource_path.strip("/") else []
            params = _match_segments(pattern, segments)
            if params is not None:
                candidates.append((tuple(_segment_rank(p) for p in pattern), resource_path, params))
        for _, resource_path, params in sorted(candidates, key=lambda c: c[0]):
            methods = self._by_path[resource_path]
            method = methods.get(http_method.upper()) or methods.get("ANY")
            if method is not None:
                return method, params
            break  # the most specific resource decides, as on AWS
        raise GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")


class _TemplateReader:
    def __init__(self, template: dict[str, Any], resolve: Resolve, rest_api_id: str | None) -> None:
        self._resources: dict[str, dict[str, Any]] = template.get("Resources", {})
        self._resolve = resolve
        apis = [k for k, v in self._resources.items() if v.get("Type") == "AWS::ApiGateway::RestApi"]
        if rest_api_id is None:
            if len(apis) != 1:
                raise ValueError(f"the template has {len(apis)} REST APIs ({apis}); name one with rest_api_id")
            rest_api_id = apis[0]
        if rest_api_id not in apis:
            raise ValueError(f"{rest_api_id} is not an AWS::ApiGateway::RestApi of the template")
        self._api = rest_api_id

    def _of_type(self, resource_type: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (logical_id, resource.get("Properties", {}))
            for logical_id, resource in self._resources.items()
            if resource.get("Type") == resource_type
            and _ref(resource.get("Properties", {}).get("RestApiId")) == self._api
        ]

    def read(self) -> ApiDefinition:
        paths = self._resource_paths()
        models = {logical_id: props for logical_id, props in self._of_type("AWS::ApiGateway::Model")}
        validators = dict(self._of_type("AWS::ApiGateway::RequestValidator"))
        methods = [
            self._method(props, paths, models, validators) for _, props in self._of_type("AWS::ApiGateway::Method")
        ]
        return ApiDefinition(
            self._stage(), methods, self._gateway_responses(), self._stage_variables(), self._access_log()
        )

    def _access_log(self) -> AccessLogSpec | None:
        for _, props in self._of_type("AWS::ApiGateway::Stage"):
            return AccessLogSpec.from_stage(props, self._resolve)
        return None

    def _stage_variables(self) -> dict[str, str]:
        for _, props in self._of_type("AWS::ApiGateway::Stage"):
            return {str(k): str(v) for k, v in (self._resolve(props.get("Variables")) or {}).items()}
        return {}

    def _stage(self) -> str:
        for _, props in self._of_type("AWS::ApiGateway::Stage"):
            return str(props["StageName"])
        for _, props in self._of_type("AWS::ApiGateway::Deployment"):
            if props.get("StageName"):
                return str(props["StageName"])
        raise ValueError(f"no AWS::ApiGateway::Stage for {self._api}")

    def _resource_paths(self) -> dict[str, str]:
        parts = {lid: props for lid, props in self._of_type("AWS::ApiGateway::Resource")}

        @functools.cache
        def path(logical_id: str) -> str:
            props = parts[logical_id]
            parent = props["ParentId"]
            prefix = "" if _is_root(parent) else path(str(_ref(parent)))
            return f"{prefix}/{props['PathPart']}"

        return {logical_id: path(logical_id) for logical_id in parts}

    def _method(
        self,
        props: dict[str, Any],
        paths: dict[str, str],
        models: dict[str, dict[str, Any]],
        validators: dict[str, dict[str, Any]],
    ) -> MethodSpec:
        resource = props["ResourceId"]
        resource_path = "/" if _is_root(resource) else paths[str(_ref(resource))]
        validator = validators.get(str(_ref(props.get("RequestValidatorId"))), {})
        by_name = {str(m.get("Name")): m for m in models.values()}
        schemas: dict[str, dict[str, Any]] = {}
        for content_type, model in (props.get("RequestModels") or {}).items():
            found = models.get(str(_ref(model))) or by_name.get(str(model))
            if found is not None and isinstance(found.get("Schema"), dict):
                schemas[content_type.lower()] = found["Schema"]
        return MethodSpec(
            http_method=str(props["HttpMethod"]).upper(),
            resource_path=resource_path,
            authorization_type=str(props.get("AuthorizationType", "NONE")),
            integration=self._integration(props.get("Integration") or {}),
            request_parameters={k: bool(v) for k, v in (props.get("RequestParameters") or {}).items()},
            models=schemas,
            validate_body=bool(validator.get("ValidateRequestBody")),
            validate_parameters=bool(validator.get("ValidateRequestParameters")),
        )

    def _integration(self, props: dict[str, Any]) -> IntegrationSpec:
        kind = str(props.get("Type", "MOCK"))
        responses = tuple(
            IntegrationResponseSpec(
                status_code=str(r["StatusCode"]),
                selection_pattern=re.compile(r["SelectionPattern"]) if r.get("SelectionPattern") else None,
                templates={k.lower(): str(v) for k, v in (r.get("ResponseTemplates") or {}).items()},
                parameters={k: str(v) for k, v in (r.get("ResponseParameters") or {}).items()},
            )
            for r in self._resolve(props.get("IntegrationResponses") or [])
        )
        templates = {k.lower(): str(v) for k, v in self._resolve(props.get("RequestTemplates") or {}).items()}
        spec = IntegrationSpec(kind, templates, responses, str(props.get("PassthroughBehavior", "WHEN_NO_MATCH")))
        if kind != "AWS":
            return spec
        uri = str(self._resolve(props.get("Uri", "")))
        role = str(self._resolve(props.get("Credentials", "")))
        function = re.fullmatch(
            r"arn:[^:]+:apigateway:([^:]+):lambda:path(/2015-03-31/functions/[^/]+/invocations)", uri
        )
        if function is not None:  # a Lambda custom (non-proxy) integration
            region, path = function.groups()
            return IntegrationSpec(kind, templates, responses, spec.passthrough, "lambda", "Invoke", region, role, path)
        match = re.fullmatch(r"arn:[^:]+:apigateway:([^:]+):([^:]+):action/([A-Za-z0-9]+)", uri)
        if match is None:
            LOG.warning("integration URI %s is not emulated (only AWS service actions are)", uri)
            return IntegrationSpec("UNSUPPORTED", templates, responses, spec.passthrough)
        region, service, action = match.groups()
        return IntegrationSpec(
            kind, templates, responses, spec.passthrough, service.split(".")[-1], action, region, role
        )

    def _gateway_responses(self) -> dict[str, GatewayResponseSpec]:
        answers: dict[str, GatewayResponseSpec] = {}
        for _, props in self._of_type("AWS::ApiGateway::GatewayResponse"):
            status = props.get("StatusCode")
            answers[str(props["ResponseType"])] = GatewayResponseSpec(
                status_code=int(status) if status else None,
                templates={k.lower(): str(v) for k, v in (props.get("ResponseTemplates") or {}).items()},
                parameters={k: str(v) for k, v in (props.get("ResponseParameters") or {}).items()},
            )
        return answers


# --------------------------------------------------------------------------------------------------
# Requests and responses without HTTP
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayRequest:
    method: str
    target: str  # the raw request target: "/v1/tasks/abc?x=1"
    headers: list[tuple[str, str]]
    body: bytes = b""
    client_ip: str = LOOPBACK

    def header(self, name: str) -> str | None:
        folded = name.lower()
        found = [value for key, value in self.headers if key.lower() == folded]
        return found[-1] if found else None

    def _split(self) -> tuple[str, str]:
        if self.target.startswith("/"):  # origin form; urlsplit would read "//x/..." as a host
            path, _, query = self.target.partition("?")
            return path, query
        parts = urlsplit(self.target)  # absolute form
        return parts.path or "/", parts.query

    @property
    def raw_path(self) -> str:
        return self._split()[0]

    @property
    def raw_query(self) -> str:
        return self._split()[1]


@dataclass(frozen=True)
class GatewayResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


# --------------------------------------------------------------------------------------------------
# SigV4 (IAM) authentication
# --------------------------------------------------------------------------------------------------


class SigV4Verifier:
    """Authenticates a request signed with SigV4 for ``execute-api`` by one of ``users``.

    The verification itself is :class:`taskrail.local.sigv4.SigV4Verifier` (shared with the local AWS
    endpoint); this adapter answers its failures as API Gateway's gateway responses.
    """

    def __init__(
        self,
        users: Mapping[str, Caller],
        *,
        region: str = REGION,
        service: str = EXECUTE_API,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._verifier = sigv4.SigV4Verifier(users, region=region, service=service, clock=clock)

    def verify(self, request: GatewayRequest) -> Caller:
        try:
            caller = self._verifier.verify(request)
        except sigv4.SigV4Error as error:
            if error.failure is sigv4.SigV4Failure.MISSING:
                raise GatewayError("MISSING_AUTHENTICATION_TOKEN", error.message) from None
            raise GatewayError("INVALID_SIGNATURE", error.message, error_type=error.error_type) from None
        if isinstance(caller, RoleSession) and request.header("X-Amz-Security-Token") is None:
            # temporary credentials are nothing without their session token, as on AWS
            raise GatewayError("INVALID_SIGNATURE", sigv4.INVALID_TOKEN, error_type="UnrecognizedClientException")
        return caller


# --------------------------------------------------------------------------------------------------
# Request validation (JSON Schema draft 4, messages as AWS words them)
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """ECMA 262 ``$`` (outside a class) is the end of input; Python's also matches before a final newline."""
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if in_class and char == "]":
            in_class = False
        elif not in_class and char == "[":
            in_class = True
        elif not in_class and char == "$":
            char = r"\Z"
        out.append(char)
        index += 1
    return re.compile("".join(out), re.ASCII)


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


_Draft4 = jsonschema.validators.extend(jsonschema.Draft4Validator, {"pattern": _ecma_pattern})


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", list: "array", dict: "object"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)


_MESSAGES: dict[str, Callable[[Any, Any], str]] = {
    "required": lambda need, inst: (
        f"object has missing required properties ({_compact(sorted(set(need) - set(inst)))})"
    ),
    "additionalProperties": lambda _, inst: (
        "object instance has properties which are not allowed by the schema: " + _compact(sorted(inst))
    ),
    "type": lambda allowed, inst: (
        f"instance type ({_json_type(inst)}) does not match any allowed primitive type "
        f"(allowed: {_compact(sorted([allowed] if isinstance(allowed, str) else allowed))})"
    ),
    "pattern": lambda pattern, inst: f'ECMA 262 regex "{pattern}" does not match input string "{inst}"',
    "minLength": lambda n, inst: f'string "{inst}" is too short (length: {len(inst)}, required minimum: {n})',
    "maxLength": lambda n, inst: f'string "{inst}" is too long (length: {len(inst)}, maximum allowed: {n})',
    "enum": lambda values, inst: (
        f"instance value ({_compact(inst)}) not found in enum (possible values: {_compact(values)})"
    ),
    "minimum": lambda n, inst: f"numeric instance is lower than the required minimum (minimum: {n}, found: {inst})",
    "maximum": lambda n, inst: f"numeric instance is greater than the required maximum (maximum: {n}, found: {inst})",
    "minItems": lambda n, inst: (
        f"array is too short: must have at least {n} elements but instance has {len(inst)} elements"
    ),
    "maxItems": lambda n, inst: (
        f"array is too long: must have at most {n} elements but instance has {len(inst)} elements"
    ),
}


def _describe(error: ValidationError) -> str:
    describe = _MESSAGES.get(str(error.validator))
    if describe is None:
        return error.message
    if error.validator == "additionalProperties":
        allowed = set((error.schema or {}).get("properties", {}))
        patterns = [re.compile(p) for p in (error.schema or {}).get("patternProperties", {})]
        extra = [k for k in error.instance if k not in allowed and not any(p.search(k) for p in patterns)]
        return describe(None, extra)
    return describe(error.validator_value, error.instance)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


# Local limits where the emulator (not API Gateway) would otherwise fail: the VTL renderer recurses per level.
MAX_JSON_DEPTH = 64


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _check_document(value: Any, depth: int = 0) -> None:
    """Refuse what DynamoDB or JSON cannot carry faithfully: deep nesting and lone UTF-16 surrogates."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        if any("\ud800" <= ch <= "\udfff" for ch in value):
            raise ValueError("a string contains a lone UTF-16 surrogate (not a Unicode character)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_document(key, depth + 1)
            _check_document(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_document(item, depth + 1)


def _validate_body(schema: dict[str, Any], body: bytes) -> None:
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
        _check_document(document)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise GatewayError(
            "BAD_REQUEST_BODY", "Invalid request body", validation=f"[request body is not valid JSON: {reason}]"
        ) from None
    errors = sorted(
        _Draft4(schema).iter_errors(document), key=lambda e: ([str(p) for p in e.absolute_path], str(e.validator))
    )
    if errors:
        raise GatewayError(
            "BAD_REQUEST_BODY", "Invalid request body", validation="[" + ", ".join(map(_describe, errors)) + "]"
        )


def _non_ascii_headers(method: MethodSpec, request: ApiRequest) -> list[str]:
    declared = {
        key.rpartition(".")[2].lower() for key in method.request_parameters if key.startswith("method.request.header.")
    }
    return [
        name
        for name, value in request.headers.items()
        if name.lower() in declared and not all(" " <= ch <= "~" or ch == "\t" for ch in value)
    ]


def _missing_parameters(method: MethodSpec, request: ApiRequest) -> list[str]:
    headers = {name.lower(): value for name, value in request.headers.items()}
    sources: dict[str, Callable[[str], bool]] = {
        "path": lambda name: bool(request.path_params.get(name)),
        "querystring": lambda name: bool(request.query.get(name)),
        "header": lambda name: bool(headers.get(name.lower())),
    }
    missing = []
    # A blank value is missing too, and AWS lists them sorted by parameter key (header, path, querystring):
    # "Test basic request validation" (?q1= is refused) and a response recorded against AWS (tests/parity/apigateway).
    for key, required in sorted(method.request_parameters.items()):
        _, _, rest = key.partition("method.request.")
        location, _, name = rest.partition(".")
        present = sources.get(location)
        if required and present is not None and not present(name):
            missing.append(name)
    return missing


# --------------------------------------------------------------------------------------------------
# Calling the AWS service (the AWS integration)
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _service_protocol(service: str) -> tuple[str, str, str]:
    """(Content-Type, X-Amz-Target prefix, signing name) of a JSON-protocol service, from botocore's model."""
    model = botocore.session.get_session().get_service_model(SERVICE_MODEL_NAMES.get(service, service))
    metadata = model.metadata
    if metadata.get("protocol") != "json":
        raise NotImplementedError(f"{service} speaks {metadata.get('protocol')}; only JSON-protocol services are")
    return (
        f"application/x-amz-json-{metadata.get('jsonVersion', '1.0')}",
        str(metadata["targetPrefix"]),
        str(metadata.get("signingName") or metadata["endpointPrefix"]),
    )


# --------------------------------------------------------------------------------------------------
# Gateway responses: simple variable substitution (not VTL, as on AWS)
# --------------------------------------------------------------------------------------------------

_VARIABLE = re.compile(
    r"\$!?(?:\{(?P<braced>(?:context|stageVariables)(?:\.[A-Za-z0-9_]+)+)\}"
    r"|(?P<plain>(?:context|stageVariables)(?:\.[A-Za-z0-9_]+)+))"
)


def _substitute(template: str, values: Mapping[str, str]) -> str:
    return _VARIABLE.sub(lambda m: values.get(m.group("braced") or m.group("plain"), ""), template)


def _gateway_header(source: str, request: GatewayRequest | None) -> str:
    """A gateway response header's value: a ``'literal'``, ``method.request.header.X`` or
    ``method.request.querystring.X`` (the console walkthrough maps both; a path parameter is not known here)."""
    if source.startswith("'") and source.endswith("'") and len(source) >= 2:
        return source[1:-1]
    if request is None:
        return ""
    location, _, name = source.removeprefix("method.request.").partition(".")
    if location == "header":
        return request.header(name) or ""
    if location == "querystring":
        return dict(parse_qsl(request.raw_query, keep_blank_values=True)).get(name, "")
    return ""


def _json_escape(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _encode(text: str) -> bytes:
    """UTF-8 as Java's ``getBytes(UTF_8)``: a lone surrogate becomes ``?`` instead of failing."""
    return text.encode("utf-8", errors="replace")


def _header_value(value: str) -> str:
    """No CR/LF (no response splitting through a header override) and Latin-1 only, as HTTP/1.1 carries it."""
    return re.sub(r"[\r\n]+", " ", value).encode("latin-1", errors="replace").decode("latin-1")


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _pick_template(templates: Mapping[str, str], accept: str | None) -> tuple[str, str] | None:
    if not templates:
        return None
    for media in (_media_type(part) for part in (accept or "").split(",")):
        if media in templates:
            return media, templates[media]
    if JSON_TYPE in templates:
        return JSON_TYPE, templates[JSON_TYPE]
    return next(iter(templates.items()))


# --------------------------------------------------------------------------------------------------
# The gateway
# --------------------------------------------------------------------------------------------------


class LocalApiGateway:
    """API Gateway (REST, v1) for the API of a synthesized template, on 127.0.0.1."""

    def __init__(
        self,
        template: dict[str, Any],
        resolve: Resolve,
        aws_endpoint_url: str,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        users: Mapping[str, Caller] = API_CALLERS,
        rest_api_id: str | None = None,
        role_credentials: Callable[[str], Credentials | None] | None = None,
        definition: ApiDefinition | None = None,
        access_logs: bool = False,
    ) -> None:
        if host not in (LOOPBACK, "localhost"):
            raise ValueError(f"the local API Gateway binds to {LOOPBACK} only, not {host!r}")
        self.api = definition or ApiDefinition.from_template(template, resolve, rest_api_id)
        self._endpoint = aws_endpoint_url.rstrip("/")
        self._port = port
        self._verifier = SigV4Verifier(users)
        self._http = urllib3.PoolManager(maxsize=32, retries=False)
        # integration role ARN -> that role's session credentials (taskrail/local/iam); the stack's otherwise
        self._role_credentials = role_credentials or (lambda _role: None)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.internal_errors: list[str] = []
        # The stage's access log, written to the local CloudWatch Logs (the stack's gateway: access_logs=True)
        self.access_log: AccessLogWriter | None = None
        if access_logs and self.api.access_log is not None:
            self.access_log = AccessLogWriter(self.api.access_log, self._logs_client, stream_name=str(uuid.uuid4()))
        for method in self.api.methods:
            if method.integration.type not in ("AWS", "MOCK") or method.authorization_type not in ("AWS_IAM", "NONE"):
                LOG.warning(
                    "%s %s: integration %s / authorization %s is not emulated; it will answer 500",
                    method.http_method, method.resource_path, method.integration.type, method.authorization_type,
                )  # fmt: skip

    @classmethod
    def from_definition(
        cls,
        definition: ApiDefinition,
        aws_endpoint_url: str,
        *,
        port: int = 0,
        role_credentials: Callable[[str], Credentials | None] | None = None,
        access_logs: bool = False,
    ) -> LocalApiGateway:
        """The gateway of an API already parsed from its template (taskrail.local.apigw_process sends one)."""
        return cls({}, lambda value: value, aws_endpoint_url, port=port, role_credentials=role_credentials,
                   definition=definition, access_logs=access_logs)  # fmt: skip

    def _logs_client(self) -> Any:
        """CloudWatch Logs of the local endpoint, as API Gateway's logging (the stack's service credential)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "logs",
            endpoint_url=self._endpoint,
            region_name=REGION,
            aws_access_key_id=BACKEND_CREDENTIALS.access_key,
            aws_secret_access_key=BACKEND_CREDENTIALS.secret_key,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=10),
        )

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> str:
        if self.access_log is not None:
            self.access_log.start()
        if self._server is None:
            self._server = _Server((LOOPBACK, self._port), _Handler, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-apigw", daemon=True
            )
            self._thread.start()
            LOG.info("local API Gateway serving %d routes at %s", len(self.api.methods), self.url)
        return self.url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.access_log is not None:
            self.access_log.stop()

    def __enter__(self) -> LocalApiGateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def bound_address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the local API Gateway is not started")
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.bound_address
        return f"http://{host}:{port}/{self.api.stage}"

    def routes(self) -> list[tuple[str, str]]:
        return self.api.routes()

    # -- the pipeline ----------------------------------------------------------------------------------

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        started = time.time()
        host = request.header("Host") or ""
        context: dict[str, str] = {
            "context.requestId": str(uuid.uuid4()),
            "context.stage": self.api.stage,
            "context.accountId": ACCOUNT_ID,
            "context.domainName": host,
            "context.domainPrefix": host.split(".", 1)[0],
            "context.protocol": "HTTP/1.1",
            "context.path": request.raw_path,
            "context.identity.sourceIp": request.client_ip,
        }
        response = self._respond(request, context)
        if self.access_log is not None:  # rendered here, sent by the writer's thread
            values = context | {
                "context.requestTime": request_time(started),
                "context.requestTimeEpoch": str(int(started * 1000)),
                "context.status": str(response.status),
                "context.responseLength": str(len(response.body)),
            }
            self.access_log.write(render_line(self.access_log.spec.format, values), int(started * 1000))
        return response

    def _respond(self, request: GatewayRequest, context: dict[str, str]) -> GatewayResponse:
        request_id = context["context.requestId"]
        try:
            if len(request.body) > MAX_PAYLOAD_BYTES:
                raise GatewayError("REQUEST_TOO_LARGE", "Request Too Long")
            method, path_params = self._route(request)
            context |= {"context.httpMethod": method.http_method, "context.resourcePath": method.resource_path}
            identity = self._authenticate(request, method)
            context |= {f"context.identity.{k}": str(v) for k, v in identity.items() if v is not None}
            api_request = self._api_request(request, method, path_params, identity, request_id)
            self._validate(method, api_request, request)
            return self._integrate(method, api_request, request)
        except GatewayError as error:
            return self.gateway_response(error, context, request)
        except Exception as error:
            LOG.exception("%s %s (request %s) failed", request.method, request.raw_path, request_id)
            self.internal_errors.append(f"{request.method} {request.raw_path}: {type(error).__name__}: {error}")
            return self.gateway_response(GatewayError("API_CONFIGURATION_ERROR", INTERNAL_ERROR), context, request)

    def _route(self, request: GatewayRequest) -> tuple[MethodSpec, dict[str, str]]:
        prefix = f"/{self.api.stage}"
        path = request.raw_path
        if path != prefix and not path.startswith(prefix + "/"):
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
        return self.api.match(request.method, path[len(prefix) :])

    def _authenticate(self, request: GatewayRequest, method: MethodSpec) -> dict[str, str | None]:
        identity: dict[str, str | None] = {
            "sourceIp": request.client_ip,
            "userAgent": request.header("User-Agent"),
            "accountId": None,
            "user": None,
            "userArn": None,
            "caller": None,
            "accessKey": None,
        }
        if method.authorization_type == "NONE":
            return identity
        if method.authorization_type != "AWS_IAM":
            raise RuntimeError(f"authorization type {method.authorization_type} is not emulated")
        user = self._verifier.verify(request)
        return identity | {
            "accountId": ACCOUNT_ID,
            "user": user.principal_id,
            "userArn": user.arn,
            "caller": user.principal_id,
            "accessKey": user.access_key_id,
        }

    def _api_request(
        self,
        request: GatewayRequest,
        method: MethodSpec,
        path_params: dict[str, str],
        identity: dict[str, str | None],
        request_id: str,
    ) -> ApiRequest:
        headers: dict[str, str] = {}
        for name, value in request.headers:
            headers.pop(next((k for k in headers if k.lower() == name.lower()), name), None)
            headers[name] = value
        return ApiRequest(
            method=request.method.upper(),
            resource_path=method.resource_path,
            path=unquote(request.raw_path[len(self.api.stage) + 1 :]) or "/",
            path_params=path_params,
            query=dict(parse_qsl(request.raw_query, keep_blank_values=True)),
            headers=headers,
            body=request.body.decode("utf-8", errors="replace"),
            stage=self.api.stage,
            stage_variables=self.api.stage_variables,
            request_id=request_id,
            identity=identity,
            account_id=ACCOUNT_ID,
        )

    def _validate(self, method: MethodSpec, api_request: ApiRequest, request: GatewayRequest) -> None:
        for name in _non_ascii_headers(method, api_request):
            # http.server decodes header bytes as Latin-1, so anything but visible ASCII would be stored as
            # different text than was sent: refuse it (HTTP field values are ASCII; RFC 9110 §5.5).
            raise GatewayError("BAD_REQUEST_PARAMETERS", f"header {name} must be printable ASCII")
        if method.validate_parameters:
            missing = _missing_parameters(method, api_request)
            if missing:
                message = f"Missing required request parameters: [{', '.join(missing)}]"
                raise GatewayError("BAD_REQUEST_PARAMETERS", message)
        content_type = _media_type(request.header("Content-Type")) or JSON_TYPE
        schema = method.models.get(content_type) or method.models.get("$default")
        if method.validate_body and schema is not None:
            _validate_body(schema, request.body)

    def _request_body(self, method: MethodSpec, api_request: ApiRequest, request: GatewayRequest) -> RenderedRequest:
        integration = method.integration
        content_type = _media_type(request.header("Content-Type")) or JSON_TYPE
        template = integration.request_templates.get(content_type)
        if template is None:
            never = integration.passthrough == "NEVER"
            if never or (integration.passthrough == "WHEN_NO_TEMPLATES" and integration.request_templates):
                raise GatewayError("UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type")
            return RenderedRequest(body=api_request.body)
        return render_integration_request(template, api_request)

    def _integrate(self, method: MethodSpec, api_request: ApiRequest, request: GatewayRequest) -> GatewayResponse:
        integration = method.integration
        rendered_request = self._request_body(method, api_request, request)
        body = rendered_request.body
        function_error: str | None = None
        if integration.type == "AWS" and integration.path:
            status, backend_body, backend_headers, function_error = self._invoke_function(integration, body)
        elif integration.type == "AWS":
            status, backend_body, backend_headers = self._call_service(integration, body)
        elif integration.type == "MOCK":
            status, backend_body, backend_headers = int(json.loads(body or "{}").get("statusCode", 200)), "", {}
        else:
            raise RuntimeError(f"integration type {integration.type} is not emulated")
        selected = self._select(integration, status, function_error)
        picked = _pick_template(selected.templates, request.header("Accept"))
        headers = {"x-amzn-RequestId": api_request.request_id}
        if picked is None:  # no template: the integration's body passes through
            return GatewayResponse(
                int(selected.status_code), _encode(backend_body), headers | {"Content-Type": JSON_TYPE}
            )
        content_type, template = picked
        rendered = render_response(template, api_request, backend_body, rendered_request.request_override)
        headers |= self._mapped_headers(selected.parameters, api_request, backend_headers)
        headers |= rendered.header_overrides
        status_code = rendered.status_override or int(selected.status_code)
        return GatewayResponse(status_code, _encode(rendered.body), headers | {"Content-Type": content_type})

    def _select(
        self, integration: IntegrationSpec, status: int, function_error: str | None = None
    ) -> IntegrationResponseSpec:
        """By status code; for a Lambda integration by the function error's errorMessage, and a function that
        returned without error gets the default response ("Handle Lambda errors in API Gateway")."""
        default = None
        for response in integration.responses:
            if response.selection_pattern is None:
                default = default or response
            elif integration.path and function_error is None:
                continue
            elif response.selection_pattern.fullmatch((function_error or "") if integration.path else str(status)):
                return response
        if default is None:
            LOG.warning("no integration response matches status %d and none is the default", status)
            raise GatewayError("API_CONFIGURATION_ERROR", INTERNAL_ERROR)  # as AWS documents that case
        return default

    @staticmethod
    def _mapped_headers(
        parameters: Mapping[str, str], api_request: ApiRequest, backend_headers: Mapping[str, str]
    ) -> dict[str, str]:
        """``method.response.header.X`` ← ``'literal'``, ``integration.response.header.Y`` or ``method.request.*``."""
        folded_backend = {k.lower(): v for k, v in backend_headers.items()}
        folded_request = {k.lower(): v for k, v in api_request.headers.items()}
        mapped: dict[str, str] = {}
        for target, source in parameters.items():
            name = target.removeprefix("method.response.header.")
            if source.startswith("'") and source.endswith("'") and len(source) >= 2:
                mapped[name] = source[1:-1]
            elif source.startswith("integration.response.header."):
                mapped[name] = folded_backend.get(source.rsplit(".", 1)[1].lower(), "")
            elif source.startswith("method.request.header."):
                mapped[name] = folded_request.get(source.rsplit(".", 1)[1].lower(), "")
        return {k: v for k, v in mapped.items() if v}

    def _call_service(self, integration: IntegrationSpec, body: str) -> tuple[int, str, dict[str, str]]:
        content_type, target_prefix, signing_name = _service_protocol(integration.service)
        headers = {"Content-Type": content_type, "X-Amz-Target": f"{target_prefix}.{integration.action}"}
        what = f"{integration.service} {integration.action}"
        status, text, answered = self._send_signed(integration, "/", body, headers, signing_name, what)
        if status >= 500:
            LOG.warning("%s answered %d: %s", what, status, text[:500])
        return status, text, answered

    def _send_signed(
        self, integration: IntegrationSpec, path: str, body: str, headers: dict[str, str], signing_name: str, what: str
    ) -> tuple[int, str, dict[str, str]]:
        """POST ``body`` to the AWS endpoint's ``path``, SigV4-signed for ``signing_name`` as the integration's
        role (the stack's service credential for a role IAM does not know); a timeout or a failed connection is
        API Gateway's answer for it."""
        url = f"{self._endpoint}{path}"
        aws_request = AWSRequest(method="POST", url=url, data=_encode(body), headers=headers)
        credentials = self._role_credentials(integration.credentials) or BACKEND_CREDENTIALS
        SigV4Auth(credentials, signing_name, integration.region).add_auth(aws_request)
        try:
            response = self._http.request(
                "POST",
                url,
                body=aws_request.body,
                headers=dict(aws_request.headers.items()),
                timeout=urllib3.Timeout(connect=5.0, read=INTEGRATION_TIMEOUT_SECONDS),
            )
        except urllib3.exceptions.TimeoutError:
            raise GatewayError("INTEGRATION_TIMEOUT", "Endpoint request timed out") from None
        except urllib3.exceptions.HTTPError as error:
            LOG.error("%s at %s failed: %s", what, url, error)
            raise GatewayError("INTEGRATION_FAILURE", INTERNAL_ERROR) from None
        return response.status, response.data.decode("utf-8", errors="replace"), dict(response.headers.items())

    def _invoke_function(self, integration: IntegrationSpec, body: str) -> tuple[int, str, dict[str, str], str | None]:
        """Lambda's Invoke (RequestResponse) on the local AWS endpoint, signed as the integration's role: the
        status, the payload, the headers and, when the function failed (``X-Amz-Function-Error``), its
        errorMessage. Invoke itself failing (denied, throttled, no such function) is API Gateway's 500."""
        status, text, headers = self._send_signed(
            integration, integration.path, body, {"Content-Type": JSON_TYPE}, "lambda", "lambda Invoke"
        )
        if status >= 300:
            LOG.error("lambda Invoke %s answered %d: %s", integration.path, status, text[:500])
            raise GatewayError("API_CONFIGURATION_ERROR", INTERNAL_ERROR)
        if not any(name.lower() == "x-amz-function-error" for name in headers):
            return status, text, headers, None
        try:
            message = json.loads(text).get("errorMessage")
        except (ValueError, AttributeError):
            message = None
        return status, text, headers, str(message if message is not None else "")

    # -- gateway responses -----------------------------------------------------------------------------

    def gateway_response(
        self, error: GatewayError, context: Mapping[str, str], request: GatewayRequest | None = None
    ) -> GatewayResponse:
        default_status = DEFAULT_STATUS.get(error.response_type, 500)
        spec = self.api.gateway_responses.get(error.response_type)
        fallback = self.api.gateway_responses.get("DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX")
        status = (spec and spec.status_code) or (fallback and fallback.status_code) or default_status
        chosen = spec if spec is not None and spec.templates else fallback
        templates = (
            chosen.templates if chosen is not None and chosen.templates else {JSON_TYPE: DEFAULT_GATEWAY_TEMPLATE}
        )
        content_type, template = _pick_template(templates, request.header("Accept") if request else None) or (
            JSON_TYPE,
            DEFAULT_GATEWAY_TEMPLATE,
        )
        values = (
            dict(context)
            | {f"stageVariables.{k}": v for k, v in self.api.stage_variables.items()}
            | {
                "context.error.message": error.message,
                "context.error.messageString": json.dumps(error.message, ensure_ascii=False),
                "context.error.responseType": error.response_type,
                "context.error.validationErrorString": _json_escape(error.validation),
            }
        )
        headers = {"Content-Type": content_type, "x-amzn-RequestId": context.get("context.requestId", "")}
        if error.error_type:
            headers["x-amzn-ErrorType"] = error.error_type
        for source in (fallback, spec):
            for target, value in (source.parameters if source else {}).items():
                mapped = _gateway_header(value, request)
                if mapped:
                    headers[target.removeprefix("gatewayresponse.header.")] = mapped
        return GatewayResponse(status, _encode(_substitute(template, values)), headers)


# --------------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------------


class _BodyTooLarge(Exception):
    pass


def _read_chunked(stream: BinaryIO, limit: int) -> bytes:
    """A ``Transfer-Encoding: chunked`` body (http.server does not decode it)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = stream.readline(1024)
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        total += size
        if total > limit:
            raise _BodyTooLarge
        chunks.append(stream.read(size))
        stream.readline(8)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    address_family = socket.AF_INET
    # The default listen backlog (5) refuses connections during a burst: storage first means accept them all.
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type[_Handler], gateway: LocalApiGateway) -> None:
        self.gateway = gateway
        super().__init__(address, handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: without this, Nagle plus delayed ACK stalls each response ~40 ms.
    disable_nagle_algorithm = True
    server_version = "taskrail-local-apigw"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("http: " + format, *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return _read_chunked(cast(BinaryIO, self.rfile), MAX_PAYLOAD_BYTES)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        if length > MAX_PAYLOAD_BYTES:
            if length <= MAX_DRAIN_BYTES:  # read it, so the client sees our answer rather than a reset
                remaining = length
                while remaining > 0:
                    chunk = self.rfile.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            raise _BodyTooLarge
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        started = time.perf_counter()
        gateway = cast(_Server, self.server).gateway
        request = GatewayRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            client_ip=self.client_address[0],
        )
        refused = guard.handler_refusal(self, browsers=True)
        try:
            request = GatewayRequest(
                request.method, request.target, request.headers, self._read_body(), request.client_ip
            )
            if refused is not None:
                # API Gateway's own answer for a request it cannot route to this API (the guard's reason in it)
                response = gateway.gateway_response(
                    GatewayError("MISSING_AUTHENTICATION_TOKEN", refused.message),
                    {"context.requestId": str(uuid.uuid4())},
                    request,
                )
            else:
                response = gateway.handle(request)
        except _BodyTooLarge:
            self.close_connection = True  # whatever is left of the body is not read
            error = GatewayError("REQUEST_TOO_LARGE", "Request Too Long")
            response = gateway.gateway_response(error, {"context.requestId": str(uuid.uuid4())}, request)
        except ValueError:
            self.close_connection = True
            error = GatewayError("BAD_REQUEST_BODY", "Invalid request body framing")
            response = gateway.gateway_response(error, {"context.requestId": str(uuid.uuid4())}, request)
        # logged before the answer is written: whoever has the answer can already find its line
        ACCESS_LOG.info(
            "%s %s %s %d %.1fms",
            self.client_address[0], self.command, request.raw_path, response.status,
            (time.perf_counter() - started) * 1000,
        )  # fmt: skip
        self._write(response)

    def _write(self, response: GatewayResponse) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(_header_value(name), _header_value(value))
            self.send_header("Content-Length", str(len(response.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, CONNECT, made-up ones) is an undefined route: 403, as API Gateway answers.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)
