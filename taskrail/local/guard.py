"""The one request guard of every local listener: loopback Host names only, and (where no browser belongs) no browser.

Every listener of the local stack calls :func:`refusal` (or wraps itself in :class:`AwsEndpointGuard`) before it
does anything else with a request:

* the **AWS endpoint** (moto's WSGI app, wrapped by :class:`AwsEndpointGuard` in ``services.server.threaded_server``),
* the **local API Gateway** (``apigw._Handler``),
* each function's **Lambda Runtime API** (``functions._RuntimeApiHandler``),
* the **console** (``console._Handler``), the one listener a browser is meant to use.

What is refused, and why:

* **A Host that is not a loopback name with the listener's own port** (``127.0.0.1``, ``localhost``,
  ``*.localhost``, ``[::1]``). A DNS-rebinding page reaches 127.0.0.1 under its own host name; it cannot make
  the browser send a loopback name (browsers resolve ``localhost`` and ``*.localhost`` themselves).
* **Browsers**, on the listeners no browser has a reason to call (AWS endpoint, Runtime API): any ``Origin``
  header or any ``Sec-Fetch-*`` header. An AWS SDK, the AWS CLI and awslambdaric never send them; a browser
  always sends ``Sec-Fetch-*`` to http://127.0.0.1 (a potentially trustworthy origin), and ``Origin`` on every
  CORS or POST request. ``Sec-Fetch-Site`` of a page on another loopback *port* is ``same-site`` (sites ignore
  ports), so the value is not trusted: the header's presence is enough. No listener grants CORS.
  The local API is left to answer browsers as API Gateway does (the API configures no CORS, so a page cannot
  read an answer, and every route needs SigV4, which no form or simple request can carry).
* On the AWS endpoint: **unsigned requests and unknown keys** (SigV4 verified by :mod:`taskrail.local.sigv4`
  against ``users.known_credentials()``), and **moto's management API** (``/moto-api/...``: reset, data, config,
  time, dashboard), which the stack drives in-process instead (``services.server.reset_moto``).

After SigV4, the AWS endpoint's optional **authorizer** decides whether the authenticated caller may make the
request: the local stack's is IAM (:class:`taskrail.local.iam.enforce.LocalIam`, the template's policies).

The AWS endpoint answers in the protocol of the service the request was for, with the codes AWS documents:
  * JSON protocols (``X-Amz-Target``): ``MissingAuthenticationTokenException``, ``UnrecognizedClientException``,
    ``InvalidSignatureException``, ``IncompleteSignatureException``, ``AccessDeniedException`` (DynamoDB answers
    all of them with HTTP 400: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html;
    other services 403, 400 for an incomplete signature: "Common Errors", e.g.
    https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html);
  * query protocol (``Action=`` forms, e.g. SNS): ``MissingAuthenticationToken`` (403), ``InvalidClientTokenId``
    (403), ``SignatureDoesNotMatch`` (403), ``IncompleteSignature`` (400), ``AccessDenied`` (403), same page;
  * S3 (REST-XML): ``AccessDenied`` (403), ``InvalidAccessKeyId`` (403), ``SignatureDoesNotMatch`` (403),
    ``AuthorizationHeaderMalformed`` (400), ``RequestTimeTooSkewed`` (403):
    https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html;
  * REST-JSON (Lambda, Pipes, Scheduler, ...): ``{"message": ...}`` with ``x-amzn-ErrorType``.

What this does not protect against: another process of the same OS user (it can read the local credentials,
they are in this repository and in ``.taskrail/local.json``), or root. It is a guard against web pages and
against drive-by unsigned requests, not a sandbox.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from xml.sax.saxutils import escape

from taskrail.local import sigv4

__all__ = [
    "LOOPBACK_NAMES",
    "AwsEndpointGuard",
    "Refusal",
    "browser_refusal",
    "host_refusal",
    "refusal",
]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
LOOPBACK_SUFFIX = ".localhost"
BROWSER_HEADERS = ("Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Sec-Fetch-User")
MOTO_API_PATHS = ("/moto-api", "/favicon.ico")


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: ``host`` (not a loopback name and port) or ``browser``."""

    reason: str
    message: str


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a Host header value; ``None`` if it is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value.partition("]")
        if not bracket:
            return None
        name += "]"
    elif value.count(":") > 1:
        return None
    else:
        name, colon, port_text = value.partition(":")
        rest = f":{port_text}" if colon else ""
    if not rest:
        return name, None
    if not rest.startswith(":") or not rest[1:].isdigit():
        return None
    return name, int(rest[1:])


def is_loopback_name(name: str) -> bool:
    name = name.lower().removesuffix(".")
    return name in LOOPBACK_NAMES or (name.endswith(LOOPBACK_SUFFIX) and len(name) > len(LOOPBACK_SUFFIX))


def host_refusal(host: str | None, port: int) -> Refusal | None:
    """A refusal unless ``host`` (the Host header) is a loopback name with ``port`` (80 when it names none)."""
    parsed = _split_host(host) if host else None
    if parsed is None or not is_loopback_name(parsed[0]) or (parsed[1] or 80) != port:
        return Refusal(
            "host",
            f"Host {host!r} is not a loopback name with this listener's port "
            f"(127.0.0.1:{port}, localhost:{port}, [::1]:{port}): the local stack answers loopback callers only",
        )
    return None


def browser_refusal(header: Callable[[str], str | None]) -> Refusal | None:
    """A refusal if the request carries any header only a browser sends (``Origin``, ``Sec-Fetch-*``)."""
    sent = [name for name in BROWSER_HEADERS if header(name) is not None]
    if sent:
        return Refusal(
            "browser",
            f"this local endpoint answers no browser (the request carries {', '.join(sent)}); "
            "AWS SDKs and CLIs never send these headers",
        )
    return None


def refusal(header: Callable[[str], str | None], port: int, *, browsers: bool) -> Refusal | None:
    """The guard of a listener on ``port``: its Host check, and its browser check unless ``browsers``."""
    return host_refusal(header("Host"), port) or (None if browsers else browser_refusal(header))


class _HandlerLike(Protocol):
    headers: Any
    server: Any


def handler_refusal(handler: _HandlerLike, *, browsers: bool) -> Refusal | None:
    """:func:`refusal` for an ``http.server.BaseHTTPRequestHandler`` (its headers and its server's port)."""
    return refusal(handler.headers.get, int(handler.server.server_address[1]), browsers=browsers)


# -- the AWS endpoint ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WsgiRequest:
    """A WSGI request in the shape :class:`sigv4.SigV4Verifier` reads."""

    method: str
    headers: list[tuple[str, str]]
    body: bytes
    raw_path: str
    raw_query: str

    def header(self, name: str) -> str | None:
        folded = name.lower()
        found = [value for key, value in self.headers if key.lower() == folded]
        return found[-1] if found else None


def _headers_of(environ: Mapping[str, Any]) -> list[tuple[str, str]]:
    headers = [(key[5:].replace("_", "-").lower(), str(value)) for key, value in environ.items() if key[:5] == "HTTP_"]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            headers.append((name, str(environ[key])))
    return headers


def _read_body(environ: dict[str, Any]) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked: werkzeug has decoded it and ends the stream
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
    return bytes(body)


def _raw_target(environ: Mapping[str, Any]) -> tuple[str, str]:
    target = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not target:
        from urllib.parse import quote

        target = quote(environ.get("PATH_INFO", "") or "/") + (
            f"?{environ['QUERY_STRING']}" if environ.get("QUERY_STRING") else ""
        )
    path, _, query = str(target).partition("?")
    return path or "/", query


@dataclass(frozen=True)
class AwsError:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


# failure -> (JSON protocols' code, query protocol's code, S3's code, S3's message or None for ours)
_CODES: dict[str, tuple[str, str, str, str | None]] = {
    sigv4.SigV4Failure.MISSING: (
        "MissingAuthenticationTokenException", "MissingAuthenticationToken", "AccessDenied", "Access Denied",
    ),
    sigv4.SigV4Failure.UNKNOWN_KEY: (
        "UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId",
        "The AWS Access Key Id you provided does not exist in our records.",
    ),
    sigv4.SigV4Failure.MISMATCH: ("InvalidSignatureException", "SignatureDoesNotMatch", "SignatureDoesNotMatch", None),
    sigv4.SigV4Failure.INCOMPLETE: (
        "IncompleteSignatureException", "IncompleteSignature", "AuthorizationHeaderMalformed", None,
    ),
    sigv4.SigV4Failure.SCOPE: (
        "InvalidSignatureException", "SignatureDoesNotMatch", "AuthorizationHeaderMalformed", None,
    ),
    sigv4.SigV4Failure.EXPIRED: ("InvalidSignatureException", "SignatureDoesNotMatch", "RequestTimeTooSkewed", None),
    sigv4.SigV4Failure.LINK_EXPIRED: ("AccessDeniedException", "AccessDenied", "AccessDenied", "Request has expired"),
    "forbidden": ("AccessDeniedException", "AccessDenied", "AccessDenied", None),
}  # fmt: skip
_BAD_REQUEST = {sigv4.SigV4Failure.INCOMPLETE, sigv4.SigV4Failure.SCOPE}


def _protocol(environ: Mapping[str, Any], service: str | None) -> str:
    if environ.get("HTTP_X_AMZ_TARGET"):
        return "json"
    if service == "s3":
        return "s3"
    form = str(environ.get("CONTENT_TYPE", "")).startswith("application/x-www-form-urlencoded")
    if form or "Action=" in str(environ.get("QUERY_STRING", "")):
        return "query"
    if service is not None or str(environ.get("PATH_INFO", "")).startswith("/2015-03-31/"):
        return "rest-json"
    return "s3"  # what moto itself takes an unidentifiable request for


def aws_error(environ: Mapping[str, Any], failure: str, message: str) -> AwsError:
    """The answer AWS gives for ``failure`` in the protocol of the service the request was for."""
    scope = sigv4.credential_scope(environ.get("HTTP_AUTHORIZATION"))
    service = scope[1] if scope else None
    protocol = _protocol(environ, service)
    json_code, query_code, s3_code, s3_message = _CODES[failure]
    request_id = str(uuid.uuid4())
    status = HTTPStatus.BAD_REQUEST if failure in _BAD_REQUEST else HTTPStatus.FORBIDDEN
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if protocol == "json":
        if target.startswith(("DynamoDB_", "DynamoDBStreams_")):
            status = HTTPStatus.BAD_REQUEST  # DynamoDB answers every client error 400
        body = json.dumps({"__type": f"com.amazon.coral.service#{json_code}", "message": message})
        content_type = "application/x-amz-json-1.0"
        extra = [("x-amzn-ErrorType", json_code)]
    elif protocol == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{query_code}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        content_type, extra = "text/xml", []
    elif protocol == "s3":
        if failure == sigv4.SigV4Failure.EXPIRED:
            status = HTTPStatus.FORBIDDEN
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{s3_code}</Code><Message>{escape(s3_message or message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        content_type, extra = "application/xml", []
    else:
        body = json.dumps({"message": message})
        content_type = "application/json"
        extra = [("x-amzn-ErrorType", json_code)]
    encoded = body.encode("utf-8")
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(encoded))),
        ("x-amzn-RequestId", request_id),
        *extra,
    ]
    return AwsError(int(status), headers, encoded)


StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
#: (verified credential, WSGI environ, the verified request) -> the answer that refuses it, or None to let it through
Authorizer = Callable[[Any, Mapping[str, Any], "_WsgiRequest"], "AwsError | None"]


class AwsEndpointGuard:
    """WSGI middleware in front of moto's app: loopback Host, no browser, no ``/moto-api``, SigV4 only, no CORS.

    ``credentials`` maps access key ids to credentials (``users.known_credentials()``); any service and region
    may be named in the scope (moto serves them all on one port).
    """

    def __init__(
        self, app: WsgiApp, credentials: Mapping[str, sigv4.Credential], authorizer: Authorizer | None = None
    ) -> None:
        self._app = app
        # presigned (query-string) S3 GETs: the result endpoint's links to large results (sigv4 module docstring)
        self._verifier = sigv4.SigV4Verifier(
            credentials, region=None, service=None, presigned_services=frozenset({"s3"})
        )
        # IAM after authentication (taskrail.local.iam.enforce.Enforcer): None, or the answer refusing the request
        self.authorizer = authorizer

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        error = self._refuse(environ)
        if error is not None:
            start_response(f"{error.status} {HTTPStatus(error.status).phrase}", error.headers)
            return [error.body]

        def without_cors(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            kept = [(name, value) for name, value in headers if not name.lower().startswith("access-control-")]
            return start_response(status, kept, *args)

        return self._app(environ, without_cors)

    def _refuse(self, environ: dict[str, Any]) -> AwsError | None:
        def header(name: str) -> str | None:
            value = environ.get("HTTP_" + name.upper().replace("-", "_"))
            return None if value is None else str(value)

        port = int(environ.get("SERVER_PORT") or 0)
        refused = refusal(header, port, browsers=False)
        if refused is not None:
            return aws_error(environ, "forbidden", refused.message)
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(MOTO_API_PATHS):
            return aws_error(
                environ,
                "forbidden",
                "moto's management API is not served over HTTP by the local stack; "
                "reset it with `taskrail local reset`",
            )
        raw_path, raw_query = _raw_target(environ)
        request = _WsgiRequest(
            method=str(environ.get("REQUEST_METHOD", "GET")),
            headers=_headers_of(environ),
            body=_read_body(environ),
            raw_path=raw_path,
            raw_query=raw_query,
        )
        try:
            credential = self._verifier.verify(request)
        except sigv4.SigV4Error as error:
            return aws_error(environ, error.failure, error.message)
        return None if self.authorizer is None else self.authorizer(credential, environ, request)
