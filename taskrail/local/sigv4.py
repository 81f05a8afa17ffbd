"""SigV4 (header form) verification against local credentials: one verifier for every local listener that signs.

The local API Gateway uses it for ``execute-api`` (the callers are the local users); the local AWS endpoint
uses it for every service and region (the callers are the users and the stack's own parts, see
``taskrail.local.users.known_credentials``).

How a request is checked: the ``Authorization`` header ``AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/
service/aws4_request, SignedHeaders=a;b, Signature=hex`` is parsed; the access key is looked up; a session token
(``X-Amz-Security-Token``) must be the credential's own; the credential scope must name the expected region and
service (when the verifier is given them), ``aws4_request`` and the date of ``X-Amz-Date`` (or ``Date``), which
must be within 15 minutes of now; ``host`` must be signed. The signature is then *recomputed with botocore*: an
``AWSRequest`` with the same method, URL (the raw request target, so the canonical path is botocore's), exactly
the signed headers with the values received, and the body, is given to a ``SigV4Auth`` (subclassed only so
that the signed-header set is the client's and the payload hash is the SHA-256 of the received body; for S3 the
path is not normalised, as ``S3SigV4Auth`` does) whose ``canonical_request``/``string_to_sign``/``signature``
run with the request's timestamp, and compared with ``hmac.compare_digest``. The canonical query string is
tried in botocore's form (raw pairs, sorted) and in AWS's strict form (decoded, re-encoded). A declared
``X-Amz-Content-SHA256`` must be the body's hash; S3 alone also takes ``UNSIGNED-PAYLOAD``, as AWS does.

Query-string (presigned) SigV4 only where a verifier is given ``presigned_services`` (the local AWS endpoint:
S3, for the result endpoint's links to large results), and only for GET and HEAD: ``X-Amz-Algorithm``,
``X-Amz-Credential``, ``X-Amz-Date``, ``X-Amz-Expires`` (1 to 604,800 s), ``X-Amz-SignedHeaders`` and
``X-Amz-Signature`` (plus ``X-Amz-Security-Token`` for a session), the canonical query string without the
signature and the payload ``UNSIGNED-PAYLOAD``, as S3 documents ("Authenticating Requests: Using Query
Parameters"); past ``X-Amz-Date`` + ``X-Amz-Expires`` it is ``Request has expired``. Browsers stay refused by the
endpoint's guard before any signature is read (the local keys are public, so a page could forge a link).
Not accepted: SigV2 and streaming (``aws-chunked``) payload signatures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Generic, Protocol, TypeVar
from urllib.parse import parse_qsl, quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

__all__ = [
    "MAX_CLOCK_SKEW",
    "SigV4Error",
    "SigV4Failure",
    "SigV4Verifier",
    "SignableRequest",
]

MAX_CLOCK_SKEW = dt.timedelta(minutes=15)
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
MISSING_TOKEN = "Missing Authentication Token"
PRESIGNED_PARAMETERS = (
    "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires",
)  # fmt: skip
MAX_PRESIGNED_SECONDS = 604_800  # a week, S3's limit


class SigV4Failure(StrEnum):
    """Why a request is not authenticated; each listener words it in its own protocol."""

    MISSING = "missing"  # no Authorization header
    INCOMPLETE = "incomplete"  # the header or the date is malformed, host not signed
    UNKNOWN_KEY = "unknown-key"  # no such access key, or a session token that is not the key's
    SCOPE = "scope"  # wrong region, service, terminator or date in the credential scope
    EXPIRED = "expired"  # more than 15 minutes off
    MISMATCH = "mismatch"  # the signature is not the one the secret key gives
    LINK_EXPIRED = "link-expired"  # a presigned URL past X-Amz-Date + X-Amz-Expires


class SigV4Error(Exception):
    def __init__(self, failure: SigV4Failure, message: str, *, error_type: str | None = None) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message
        # the name API Gateway sends as x-amzn-ErrorType for this failure
        self.error_type = error_type


class SignableRequest(Protocol):
    @property
    def method(self) -> str: ...
    @property
    def headers(self) -> Sequence[tuple[str, str]]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def raw_path(self) -> str: ...
    @property
    def raw_query(self) -> str: ...
    def header(self, name: str) -> str | None: ...


class Credential(Protocol):
    @property
    def access_key_id(self) -> str: ...
    @property
    def secret_access_key(self) -> str: ...


C = TypeVar("C", bound=Credential)


class _ReplaySigner(SigV4Auth):
    """botocore's SigV4 with the client's signed-header set and the received body's hash."""

    def __init__(
        self, credentials: Credentials, service: str, region: str, signed: list[str], query: str, payload_hash: str
    ) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed
        self._query = query
        self._payload_hash = payload_hash

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        header_map = HTTPHeaders()
        for name in self._signed:
            for value in request.headers.get_all(name) or []:
                header_map[name] = value
        return header_map

    def canonical_query_string(self, request: AWSRequest) -> str:
        return self._query

    def payload(self, request: AWSRequest) -> str:
        return self._payload_hash  # hashed once by the verifier (botocore's AWSRequest.body re-prepares)

    def _normalize_url_path(self, path: str) -> str:
        if self._service_name == "s3":  # S3SigV4Auth: S3 keys are signed as sent
            return path
        return str(super()._normalize_url_path(path))


@dataclass(frozen=True)
class _Authorization:
    access_key: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: list[str]
    signature: str


def credential_scope(header: str | None) -> tuple[str, str] | None:
    """``(region, service)`` named by an ``Authorization`` header, if it has a readable credential scope."""
    if not header:
        return None
    for part in header.partition(" ")[2].split(","):
        key, _, value = part.strip().partition("=")
        scope = value.split("/")
        if key.strip() == "Credential" and len(scope) == 5:
            return scope[2], scope[3]
    return None


def _parse_authorization(header: str, request: SignableRequest) -> _Authorization:
    algorithm, _, rest = header.strip().partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        key, equals, value = part.strip().partition("=")
        if equals:
            fields[key.strip()] = value.strip()
    missing = [name for name in ("Credential", "Signature", "SignedHeaders") if name not in fields]
    if algorithm != "AWS4-HMAC-SHA256" or missing:
        complaints = "".join(f"Authorization header requires '{name}' parameter. " for name in missing)
        if request.header("X-Amz-Date") is None and request.header("Date") is None:
            complaints += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        if algorithm != "AWS4-HMAC-SHA256":
            complaints = f"Unsupported authorization type '{algorithm}' (only AWS4-HMAC-SHA256). " + complaints
        raise SigV4Error(
            SigV4Failure.INCOMPLETE, f"{complaints}Authorization={header}", error_type="IncompleteSignatureException"
        )
    scope = fields["Credential"].split("/")
    if len(scope) != 5:
        raise SigV4Error(
            SigV4Failure.INCOMPLETE,
            f"Credential should have 5 parts (AKID/date/region/service/aws4_request), got '{fields['Credential']}'.",
            error_type="IncompleteSignatureException",
        )
    access_key, date, region, service, terminator = scope
    return _Authorization(
        access_key, date, region, service, terminator, fields["SignedHeaders"].lower().split(";"), fields["Signature"]
    )


def _request_time(request: SignableRequest) -> tuple[dt.datetime, str]:
    amz_date = request.header("X-Amz-Date")
    try:
        if amz_date is not None:
            return dt.datetime.strptime(amz_date.strip(), SIGV4_TIMESTAMP).replace(tzinfo=dt.UTC), amz_date.strip()
        date = request.header("Date")
        if date is not None:
            when = parsedate_to_datetime(date).astimezone(dt.UTC)
            return when, when.strftime(SIGV4_TIMESTAMP)
    except (ValueError, TypeError):
        pass
    raise SigV4Error(
        SigV4Failure.INCOMPLETE,
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header "
        "(X-Amz-Date in the form YYYYMMDD'T'HHMMSS'Z').",
        error_type="IncompleteSignatureException",
    )


def _strict_query(raw_query: str) -> str:
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs))


def _botocore_query(raw_query: str) -> str:
    if not raw_query:
        return ""
    pairs = [pair.partition("=") for pair in raw_query.split("&")]
    return "&".join(f"{key}={value}" for key, _, value in sorted(pairs))


class SigV4Verifier(Generic[C]):
    """Authenticates a SigV4-signed request by one of ``credentials`` (access key id -> credential).

    ``region`` / ``service``: the scope the credential must name; ``None`` accepts any (the local AWS endpoint
    serves every service and region on one port).
    """

    def __init__(
        self,
        credentials: Mapping[str, C],
        *,
        region: str | None,
        service: str | None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        presigned_services: frozenset[str] = frozenset(),
    ) -> None:
        self._credentials = credentials
        self._region = region
        self._service = service
        self._clock = clock
        self._presigned_services = presigned_services

    def verify(self, request: SignableRequest) -> C:
        header = request.header("Authorization")
        if not header and self._presigned_services and "X-Amz-Signature=" in request.raw_query:
            return self._verify_presigned(request)
        if not header:
            raise SigV4Error(SigV4Failure.MISSING, MISSING_TOKEN)
        auth = _parse_authorization(header, request)
        credential = self._credentials.get(auth.access_key)
        token = request.header("X-Amz-Security-Token")
        if credential is None or (token is not None and token != getattr(credential, "session_token", None)):
            raise SigV4Error(SigV4Failure.UNKNOWN_KEY, INVALID_TOKEN, error_type="UnrecognizedClientException")
        when, timestamp = _request_time(request)
        self._check_scope(auth, timestamp)
        self._check_clock(when, timestamp)
        if "host" not in auth.signed_headers:
            raise SigV4Error(
                SigV4Failure.INCOMPLETE,
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
                error_type="IncompleteSignatureException",
            )
        self._check_signature(request, auth, credential, timestamp)
        return credential

    def _verify_presigned(self, request: SignableRequest) -> C:
        params = dict(parse_qsl(request.raw_query, keep_blank_values=True))
        auth = self._presigned_authorization(request, params)
        credential = self._credentials.get(auth.access_key)
        token = params.get("X-Amz-Security-Token")
        if credential is None or (token is not None and token != getattr(credential, "session_token", None)):
            raise SigV4Error(SigV4Failure.UNKNOWN_KEY, INVALID_TOKEN, error_type="UnrecognizedClientException")
        self._check_scope(auth, params["X-Amz-Date"])
        self._check_link_time(params)
        self._check_presigned_signature(request, auth, credential, params["X-Amz-Date"])
        return credential

    def _presigned_authorization(self, request: SignableRequest, params: Mapping[str, str]) -> _Authorization:
        missing = [name for name in PRESIGNED_PARAMETERS if not params.get(name)]
        if missing or params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
            raise SigV4Error(
                SigV4Failure.INCOMPLETE,
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.",
            )
        scope = params["X-Amz-Credential"].split("/")
        if len(scope) != 5 or scope[3] not in self._presigned_services or request.method not in ("GET", "HEAD"):
            raise SigV4Error(SigV4Failure.MISSING, "presigned URLs are accepted for S3 GET and HEAD only")
        signed = params["X-Amz-SignedHeaders"].lower().split(";")
        if "host" not in signed:
            raise SigV4Error(SigV4Failure.INCOMPLETE, "'Host' must be a signed header of a presigned URL.")
        access_key, date, region, service, terminator = scope
        return _Authorization(access_key, date, region, service, terminator, signed, params["X-Amz-Signature"])

    def _check_link_time(self, params: Mapping[str, str]) -> None:
        try:
            when = dt.datetime.strptime(params["X-Amz-Date"], SIGV4_TIMESTAMP).replace(tzinfo=dt.UTC)
            expires = int(params["X-Amz-Expires"])
        except ValueError:
            raise SigV4Error(SigV4Failure.INCOMPLETE, "X-Amz-Date or X-Amz-Expires is malformed.") from None
        if not 1 <= expires <= MAX_PRESIGNED_SECONDS:
            raise SigV4Error(
                SigV4Failure.INCOMPLETE, "X-Amz-Expires must be less than a week (in seconds) that is 604800"
            )
        now = self._clock()
        if when > now + MAX_CLOCK_SKEW:
            raise SigV4Error(SigV4Failure.EXPIRED, f"Signature not yet current: {params['X-Amz-Date']}")
        if now > when + dt.timedelta(seconds=expires):
            raise SigV4Error(SigV4Failure.LINK_EXPIRED, "Request has expired")

    @staticmethod
    def _check_presigned_signature(
        request: SignableRequest, auth: _Authorization, credential: C, timestamp: str
    ) -> None:
        pairs = [(k, v) for k, v in parse_qsl(request.raw_query, keep_blank_values=True) if k != "X-Amz-Signature"]
        query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs))
        aws_request = AWSRequest(method=request.method, url=f"http://{request.header('Host') or ''}{request.raw_path}")
        for name in auth.signed_headers:
            for key, value in request.headers:
                if key.lower() == name:
                    aws_request.headers.add_header(name, value)
        aws_request.context["timestamp"] = timestamp
        # S3 signs a link's payload as UNSIGNED-PAYLOAD; botocore's SigV4QueryAuth (execute-api: a WebSocket
        # connect URL) as the hash of the empty body
        payloads = (UNSIGNED_PAYLOAD,) if auth.service == "s3" else (hashlib.sha256(b"").hexdigest(), UNSIGNED_PAYLOAD)
        canonical = ""
        for payload in payloads:
            signer = _ReplaySigner(
                Credentials(credential.access_key_id, credential.secret_access_key), auth.service, auth.region,
                auth.signed_headers, query, payload,
            )  # fmt: skip
            canonical = canonical or signer.canonical_request(aws_request)
            string_to_sign = signer.string_to_sign(aws_request, signer.canonical_request(aws_request))
            if hmac.compare_digest(signer.signature(string_to_sign, aws_request), auth.signature.lower()):
                return
        raise SigV4Error(
            SigV4Failure.MISMATCH,
            f"{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n'{canonical}'\n",
            error_type="InvalidSignatureException",
        )

    def _check_scope(self, auth: _Authorization, timestamp: str) -> None:
        problem = ""
        if self._region is not None and auth.region != self._region:
            problem = f"Credential should be scoped to a valid region, not '{auth.region}'. "
        elif self._service is not None and auth.service != self._service:
            problem = f"Credential should be scoped to correct service: '{self._service}'. "
        elif not auth.region or not auth.service:
            problem = "Credential should be scoped to a region and a service. "
        elif auth.terminator != "aws4_request":
            problem = f"Credential should be scoped with a valid terminator: 'aws4_request', not '{auth.terminator}'. "
        elif auth.date != timestamp[:8]:
            problem = (
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{auth.date}' != '{timestamp[:8]}', from '{timestamp}'."
            )
        if problem:
            raise SigV4Error(SigV4Failure.SCOPE, problem, error_type="InvalidSignatureException")

    def _check_clock(self, when: dt.datetime, timestamp: str) -> None:
        now = self._clock()
        if when < now - MAX_CLOCK_SKEW:
            earliest = (now - MAX_CLOCK_SKEW).strftime(SIGV4_TIMESTAMP)
            message = f"Signature expired: {timestamp} is now earlier than {earliest} ({now:%Y%m%dT%H%M%SZ} - 15 min.)"
        elif when > now + MAX_CLOCK_SKEW:
            latest = (now + MAX_CLOCK_SKEW).strftime(SIGV4_TIMESTAMP)
            message = (
                f"Signature not yet current: {timestamp} is still later than {latest} ({now:%Y%m%dT%H%M%SZ} + 15 min.)"
            )
        else:
            return
        raise SigV4Error(SigV4Failure.EXPIRED, message, error_type="InvalidSignatureException")

    @staticmethod
    def _payload_accepted(request: SignableRequest, service: str, payload_hash: str) -> bool:
        declared = request.header("X-Amz-Content-SHA256")
        if declared is None:
            return True
        if declared == UNSIGNED_PAYLOAD and service == "s3":
            return True
        return hmac.compare_digest(declared.lower(), payload_hash)

    def _check_signature(self, request: SignableRequest, auth: _Authorization, credential: C, timestamp: str) -> None:
        signed = {name: [v for k, v in request.headers if k.lower() == name] for name in auth.signed_headers}
        host = request.header("Host") or ""
        payload_hash = hashlib.sha256(request.body).hexdigest()
        complete = all(signed.values()) and self._payload_accepted(request, auth.service, payload_hash)
        first: tuple[str, str] | None = None
        for query in dict.fromkeys((_botocore_query(request.raw_query), _strict_query(request.raw_query))):
            aws_request = AWSRequest(method=request.method, url=f"http://{host}{request.raw_path}", data=request.body)
            for name, values in signed.items():
                for value in values:
                    aws_request.headers.add_header(name, value)
            aws_request.context["timestamp"] = timestamp
            signer = _ReplaySigner(
                Credentials(credential.access_key_id, credential.secret_access_key), auth.service, auth.region,
                auth.signed_headers, query, payload_hash,
            )  # fmt: skip
            canonical = signer.canonical_request(aws_request)
            string_to_sign = signer.string_to_sign(aws_request, canonical)
            expected = signer.signature(string_to_sign, aws_request)
            if complete and hmac.compare_digest(expected, auth.signature.lower()):
                return
            first = first or (canonical, string_to_sign)
        assert first is not None
        raise SigV4Error(
            SigV4Failure.MISMATCH,
            f"{SIGNATURE_MISMATCH}\n\nThe Canonical String for this request should have been\n'{first[0]}'\n\n"
            f"The String-to-Sign should have been\n'{first[1]}'\n",
            error_type="InvalidSignatureException",
        )
