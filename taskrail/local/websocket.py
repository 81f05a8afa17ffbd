"""The local API Gateway for the template's WebSocket API: a real WebSocket server on 127.0.0.1, as AWS runs one.

What is served is read from the synthesized template (:mod:`taskrail.local.websocket_api`): the stage, the routes
selected by the API's ``RouteSelectionExpression``, each route's integration (``AWS`` service actions called as the
integration's ``CredentialsArn`` role, so the local IAM evaluates the template's policies for them; ``MOCK``), the
request templates rendered by :mod:`taskrail.local.vtl` with API Gateway's WebSocket ``$context``
(``connectionId``, ``routeKey``, ``eventType`` CONNECT | MESSAGE | DISCONNECT, ``messageDirection``, ``messageId``,
``requestId``, ``requestTimeEpoch``, ``connectedAt``, ``apiId``, ``stage``, ``domainName``, ``identity.*``), and a
two-way route's integration response sent back to the client.

Public API
----------
``LocalWebSocketApi(definition, aws_endpoint_url, *, authorize=None, port=0, management_port=0,
idle_timeout=600, max_lifetime=7200)``
    ``start() -> url``     ``ws://127.0.0.1:PORT/{stage}`` (the WebSocket URL);
    ``management_url``     ``http://127.0.0.1:PORT2/{stage}``: the ``@connections`` API
    ``localize(text)``     AWS's URLs of this API (``wss://{apiId}.execute-api...``, ``https://{apiId}...``) as the
                           local ones: the stack's outputs and the functions' environments name them
    ``connection_ids()``, ``stop()``
``WebSocketEmulator``      the stack's emulator (taskrail/local/stack.py EMULATORS)

What AWS does, and the local server does too
--------------------------------------------
* ``$connect`` (``AuthorizationType: AWS_IAM``): the GET upgrade request is SigV4-checked for ``execute-api``, in the
  header form or the query-string form botocore's ``SigV4QueryAuth`` produces (a client that cannot set headers);
  no or a bad signature is an HTTP 403 before any integration runs; then the ``$connect`` integration runs, and the
  connection opens only if it succeeded.
* A message is routed by the route selection expression; no match and no ``$default`` route: the client gets an
  error message (``{"message": "Forbidden", "connectionId", "requestId"}``), nothing runs.
* ``$disconnect`` runs when either side closes, or the connection times out: idle 10 minutes, 2 hours at most
  ("Quotas for configuring and running a WebSocket in API Gateway": connection duration 2 hours, idle connection
  timeout 10 minutes, frame 32 KB, message payload 128 KB; a larger message closes the connection with 1009).
* A binary frame from the client closes the connection with 1003, and ``$disconnect`` runs ("Binary media types for
  WebSocket APIs in API Gateway": "If a client app sends a binary frame, API Gateway rejects it and disconnects the
  client with code 1003").
* The management API: ``POST`` (PostToConnection), ``GET`` (GetConnection), ``DELETE`` (DeleteConnection) on
  ``/{stage}/@connections/{connectionId}``, SigV4-checked and authorized as ``execute-api:ManageConnections`` on
  ``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/{METHOD}/@connections/{connectionId}`` against the
  caller's role policies (``authorize``, the local IAM); 410 ``GoneException`` for a connection that is closed or
  never was; 413 ``PayloadTooLargeException`` over 128 KB. A post is queued to that connection and answered at once:
  a client that stops reading delays nobody else (its own queue grows; over ``MAX_QUEUED`` it is disconnected).
  Messages over 32 KB go out as frames of at most 32 KB.

Known deviations
----------------
* The management API listens on a port of its own (AWS serves it on the API's host): ``websockets`` serves only GET
  upgrade requests. ``localize`` maps each AWS URL to its local listener.
* A client frame between 32 and 128 KB is accepted (the limit is applied to messages, 128 KB, with close code 1009).
* The close codes for the idle and lifetime limits (1001 "Going away") and the status of a failed ``$connect``
  integration (500) are not verified against AWS; the unknown-route message's text neither, nor the close reason
  sent with a binary frame's 1003 (the page gives the code only).
* A browser is refused (any ``Origin`` or ``Sec-Fetch-*`` header: taskrail/local/guard.py), which AWS would let
  connect: the local users' keys are public, and a WebSocket has no CORS, so a page could otherwise presign a URL
  with them and read a user's progress (docs/DECISIONS.md, "The local stack's trust boundary").
* The caller's own IAM *authorization* on ``$connect`` (``execute-api:Invoke`` on
  ``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect``, "Control access to WebSocket APIs with IAM
  authorization") is evaluated when ``caller_policies`` is given: the stack gives every local caller README's
  documented statement (:data:`CALLER_CONNECT_STATEMENT`), so a caller without it is refused 403 as on AWS. The
  denial's body (IAM's "User: … is not authorized to perform …" as REST answers it) is not verified for a WebSocket
  ``$connect``. The local REST gateway does not evaluate ``execute-api:Invoke`` (apigw.py).
* Ping frames do not count as activity for the idle timeout (only messages do); throttling, API keys and Lambda
  authorizers are not emulated.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import functools
import http.server
import json
import logging
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast
from urllib.parse import parse_qsl, unquote

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from taskrail.local import guard, sigv4
from taskrail.local.apigw import _service_protocol
from taskrail.local.iam.evaluate import Policy, Principal, denial_message, evaluate
from taskrail.local.iam.evaluate import Request as IamRequest
from taskrail.local.iam.principals import RoleCredential, RoleCredentials, role_credential
from taskrail.local.region import ACCOUNT_ID, REGION
from taskrail.local.users import API_CALLERS, Caller, RoleSession, known_credentials
from taskrail.local.vtl import ApiRequest, render_request, render_response
from taskrail.local.websocket_api import (
    CONNECT,
    DEFAULT_KEY,
    DISCONNECT,
    Route,
    WebSocketApiDefinition,
    WsIntegration,
    api_endpoint,
    callback_endpoint,
    evaluate_selection,
    websocket_apis,
)

__all__ = ["LocalWebSocketApi", "WebSocketEmulator"]

LOG = logging.getLogger("taskrail.local.websocket")
LOOPBACK = "127.0.0.1"
EXECUTE_API = "execute-api"
MANAGE_CONNECTIONS = "execute-api:ManageConnections"
IDLE_TIMEOUT_SECONDS = 600.0  # AWS: idle connection timeout 10 minutes
MAX_LIFETIME_SECONDS = 7200.0  # AWS: connection duration 2 hours
MAX_MESSAGE_BYTES = 128 * 1024  # AWS: message payload 128 KB
MAX_FRAME_BYTES = 32 * 1024  # AWS: frame 32 KB
FRAME_CHARACTERS = MAX_FRAME_BYTES // 4  # a text fragment of this many characters is at most 32 KB of UTF-8
MAX_QUEUED = 10_000  # messages waiting for one client that does not read: then it is disconnected
GOING_AWAY = 1001
UNSUPPORTED_DATA = 1003  # AWS: a binary frame from the client
#: a management call's answer waits for the server's loop at most this long
LOOP_TIMEOUT_SECONDS = 10.0

INVOKE = "execute-api:Invoke"
#: What README's "Granting a caller access" policy grants a caller of the WebSocket API (its placeholders filled by
#: :func:`caller_connect_policy`): each local caller holds it, as a user given that policy does on AWS.
CALLER_CONNECT_STATEMENT: Mapping[str, str] = {
    "Effect": "Allow",
    "Action": INVOKE,
    "Resource": "arn:aws:execute-api:REGION:ACCOUNT:WS_API_ID/live/$connect",
}

#: (role ARN) -> botocore credentials of that role's session; (caller credential, action, resource) -> denial or None
RoleCredentialsOf = Callable[[str], Credentials]
Authorize = Callable[[Any, str, str], "str | None"]
#: (the authenticated caller: a LocalUser or a RoleSession) -> its identity policies
CallerPolicies = Callable[[Any], "list[Policy]"]


def caller_connect_policy(definition: WebSocketApiDefinition) -> Policy:
    """:data:`CALLER_CONNECT_STATEMENT` for ``definition``'s API, in the local account and region."""
    resource = (
        CALLER_CONNECT_STATEMENT["Resource"]
        .replace("REGION", REGION)
        .replace("ACCOUNT", ACCOUNT_ID)
        .replace("WS_API_ID", definition.api_id)
    )
    statement = {**CALLER_CONNECT_STATEMENT, "Resource": resource}
    return Policy(name="README caller policy (WebSocket)", document={"Version": "2012-10-17", "Statement": [statement]})


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _iso(epoch_ms: int) -> str:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_connection_id() -> str:
    """Like AWS's (``L0SM9cOFvHcCIhw=``): 10 random bytes, base64 (URL-safe, as a path segment needs)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(10)).decode()


def _role_session(role_arn: str) -> Credentials:
    """API Gateway's session of an integration's ``CredentialsArn`` (derived: the local endpoint knows every one)."""
    credential = role_credential(role_arn, "apigateway")
    return Credentials(credential.access_key_id, credential.secret_access_key, credential.session_token)


@dataclass(frozen=True)
class _Signed:
    """A request in the shape :class:`taskrail.local.sigv4.SigV4Verifier` reads."""

    method: str
    headers: list[tuple[str, str]]
    raw_path: str
    raw_query: str
    body: bytes = b""

    def header(self, name: str) -> str | None:
        folded = name.lower()
        found = [value for key, value in self.headers if key.lower() == folded]
        return found[-1] if found else None


@dataclass
class _Connection:
    id: str
    identity: dict[str, str | None]
    connected_at_ms: int
    headers: dict[str, str]
    query: dict[str, str]
    socket: ServerConnection | None = None
    last_active_ms: int = 0
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    close_code: int | None = None
    close_reason: str = ""


class _Refused(Exception):
    def __init__(self, status: int, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type


class LocalWebSocketApi:
    """API Gateway (WebSocket) for one WebSocket API of a synthesized template, on 127.0.0.1."""

    def __init__(
        self,
        definition: WebSocketApiDefinition,
        aws_endpoint_url: str,
        *,
        authorize: Authorize | None = None,
        role_credentials: RoleCredentialsOf = _role_session,
        users: Mapping[str, Caller] = API_CALLERS,
        management_credentials: Mapping[str, Any] | None = None,
        port: int = 0,
        management_port: int = 0,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        max_lifetime: float = MAX_LIFETIME_SECONDS,
        caller_policies: CallerPolicies | None = None,
    ) -> None:
        self.api = definition
        self._caller_policies = caller_policies
        self._endpoint = aws_endpoint_url.rstrip("/")
        self._authorize = authorize or (lambda _credential, _action, _resource: None)
        self._role_credentials = role_credentials
        self._verifier = sigv4.SigV4Verifier(
            users, region=REGION, service=EXECUTE_API, presigned_services=frozenset({EXECUTE_API})
        )
        self._management_verifier = sigv4.SigV4Verifier(
            management_credentials or RoleCredentials(known_credentials()), region=REGION, service=EXECUTE_API
        )
        self._port = port
        self._management_port = management_port
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self._http = urllib3.PoolManager(maxsize=16, retries=False)
        self._connections: dict[str, _Connection] = {}
        self._pending: dict[int, _Connection] = {}  # id(ServerConnection) -> accepted by $connect, not yet served
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._bound_port = 0
        self._management: _ManagementServer | None = None
        self._management_thread: threading.Thread | None = None
        self.internal_errors: list[str] = []
        for route in definition.routes.values():
            if route.integration is not None and route.integration.type not in ("AWS", "MOCK"):
                LOG.warning("WebSocket route %s: its integration is not emulated; it will fail", route.key)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> str:
        if self._thread is not None:
            return self.url
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(ready, failure), name="local-websocket", daemon=True)
        self._thread.start()
        if not ready.wait(30) or failure:
            raise RuntimeError(f"the local WebSocket API did not start: {failure[0] if failure else 'timeout'}")
        self._management = _ManagementServer((LOOPBACK, self._management_port), _ManagementHandler, self)
        self._management_thread = threading.Thread(
            target=self._management.serve_forever, kwargs={"poll_interval": 0.1}, name="local-ws-manage", daemon=True
        )
        self._management_thread.start()
        LOG.info("local WebSocket API %s at %s (@connections at %s)", self.api.api_id, self.url, self.management_url)
        return self.url

    def stop(self) -> None:
        management, self._management = self._management, None
        if management is not None:
            management.shutdown()
            management.server_close()
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and self._stopping is not None:
            loop.call_soon_threadsafe(self._stopping.set)
            thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> LocalWebSocketApi:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if not self._bound_port:
            raise RuntimeError("the local WebSocket API is not started")
        return f"ws://{LOOPBACK}:{self._bound_port}/{self.api.stage}"

    @property
    def port(self) -> int:
        return self._bound_port

    @property
    def management_port(self) -> int:
        return int(self._management.server_address[1]) if self._management is not None else 0

    @property
    def management_url(self) -> str:
        if self._management is None:
            raise RuntimeError("the local WebSocket API is not started")
        return f"http://{LOOPBACK}:{self._management.server_address[1]}/{self.api.stage}"

    def localize(self, text: str) -> str:
        """AWS's URLs of this API in ``text`` as the local listeners' (``wss://`` → ``ws://``, ``https://`` → the
        ``@connections`` listener's ``http://``)."""
        ws_root = self.url.rsplit("/", 1)[0]
        management_root = self.management_url.rsplit("/", 1)[0]
        return text.replace(api_endpoint(self.api.api_id), ws_root).replace(
            callback_endpoint(self.api.api_id), management_root
        )

    def connection_ids(self) -> list[str]:
        return list(self._connections)

    def queued(self, connection_id: str) -> int:
        """How many messages wait to be written to that connection (0 if it is gone)."""
        live = self._connections.get(connection_id)
        return live.queue.qsize() if live is not None else 0

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve_until_stopped(ready))
        except BaseException as error:  # reported to start(), which raises it
            failure.append(error)
            ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve_until_stopped(self, ready: threading.Event) -> None:
        self._stopping = asyncio.Event()
        async with serve(
            self._serve,
            LOOPBACK,
            self._port,
            process_request=self._handshake,
            max_size=MAX_MESSAGE_BYTES,
            compression=None,
            ping_interval=None,
            server_header=None,
        ) as server:
            self._bound_port = int(server.sockets[0].getsockname()[1])
            ready.set()
            await self._stopping.wait()

    # -- $connect: the upgrade request -----------------------------------------------------------------

    async def _handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = list(request.headers.raw_items())
        refused = guard.refusal(request.headers.get, self._bound_port, browsers=False)
        if refused is not None:
            return self._reject(connection, 403, refused.message)
        path, _, query = request.path.partition("?")
        if path.rstrip("/") != f"/{self.api.stage}":
            return self._reject(connection, 403, "Forbidden")
        try:
            identity = self._identity(_Signed("GET", headers, path, query), connection)
        except _Refused as error:
            return self._reject(connection, error.status, error.message, error.error_type)
        live = _Connection(
            id=new_connection_id(),
            identity=identity,
            connected_at_ms=_now_ms(),
            headers={k: v for k, v in headers},
            query=dict(parse_qsl(query, keep_blank_values=True)),
        )
        route = self.api.routes.get(CONNECT)
        if route is not None and route.integration is not None:
            status, _body = await self._run_integration(live, route, "CONNECT", "")
            if not 200 <= status < 300:
                return self._reject(connection, 500, "Internal server error")
        self._pending[id(connection)] = live
        return None

    def _reject(self, connection: ServerConnection, status: int, message: str, error_type: str = "") -> Response:
        response = connection.respond(status, json.dumps({"message": message}))
        response.headers["Content-Type"] = "application/json"
        if error_type:
            response.headers["x-amzn-ErrorType"] = error_type
        return response

    def _identity(self, request: _Signed, connection: ServerConnection) -> dict[str, str | None]:
        address = connection.remote_address
        identity: dict[str, str | None] = {
            "sourceIp": str(address[0]) if address else LOOPBACK,
            "userAgent": request.header("User-Agent"),
            "accountId": None,
            "user": None,
            "userArn": None,
            "caller": None,
            "accessKey": None,
        }
        route = self.api.routes.get(CONNECT)
        if route is None or route.authorization_type != "AWS_IAM":
            return identity
        try:
            caller = self._verifier.verify(request)
        except sigv4.SigV4Error as error:
            return _raise_refused(error)
        token = request.header("X-Amz-Security-Token") or dict(parse_qsl(request.raw_query)).get("X-Amz-Security-Token")
        if isinstance(caller, RoleSession) and token is None:
            raise _Refused(403, sigv4.INVALID_TOKEN, "UnrecognizedClientException")
        self._authorize_connect(caller)
        return identity | {
            "accountId": ACCOUNT_ID,
            "user": caller.principal_id,
            "userArn": caller.arn,
            "caller": caller.principal_id,
            "accessKey": caller.access_key_id,
        }

    def _authorize_connect(self, caller: Any) -> None:
        """The caller's ``execute-api:Invoke`` on this stage's ``$connect``, against its identity policies."""
        if self._caller_policies is None:
            return
        role = caller.role.arn if isinstance(caller, RoleSession) else None
        request = IamRequest(
            principal=Principal(arn=caller.arn, account=ACCOUNT_ID, role_arn=role),
            action=INVOKE,
            resource=f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{self.api.api_id}/{self.api.stage}/{CONNECT}",
        )
        decision = evaluate(request, self._caller_policies(caller))
        if not decision.allowed:
            raise _Refused(403, denial_message(request, decision), "AccessDeniedException")

    # -- a connection's life ---------------------------------------------------------------------------

    async def _serve(self, connection: ServerConnection) -> None:
        live = self._pending.pop(id(connection))
        live.socket = connection
        live.last_active_ms = _now_ms()
        self._connections[live.id] = live
        writer = asyncio.create_task(self._write(live))
        limits = asyncio.create_task(self._enforce_limits(live))
        try:
            async for message in connection:
                live.last_active_ms = _now_ms()
                if not isinstance(message, str):  # a binary frame: rejected, the client disconnected
                    await connection.close(UNSUPPORTED_DATA, "Binary frames are not supported")
                    break
                await self._message(live, message)
        except ConnectionClosed:
            pass
        finally:
            self._connections.pop(live.id, None)
            writer.cancel()
            limits.cancel()
            live.close_code = connection.close_code if connection.close_code is not None else 1006
            live.close_reason = connection.close_reason or ""
            route = self.api.routes.get(DISCONNECT)
            if route is not None and route.integration is not None:
                await self._run_integration(live, route, "DISCONNECT", "")

    async def _write(self, live: _Connection) -> None:
        assert live.socket is not None
        with contextlib.suppress(ConnectionClosed):
            while True:
                data = await live.queue.get()
                if len(data.encode()) <= MAX_FRAME_BYTES:
                    await live.socket.send(data)
                else:  # fragmented as AWS does: frames of at most 32 KB
                    await live.socket.send(
                        [data[i : i + FRAME_CHARACTERS] for i in range(0, len(data), FRAME_CHARACTERS)]
                    )

    async def _enforce_limits(self, live: _Connection) -> None:
        assert live.socket is not None
        while True:
            now = _now_ms()
            idle_left = live.last_active_ms + self.idle_timeout * 1000 - now
            life_left = live.connected_at_ms + self.max_lifetime * 1000 - now
            if idle_left <= 0 or life_left <= 0:
                await live.socket.close(GOING_AWAY, "Going away")
                return
            await asyncio.sleep(min(idle_left, life_left) / 1000)

    async def _message(self, live: _Connection, body: str) -> None:
        request_id = str(uuid.uuid4())
        key = self.api.route_key(body)
        if key is None:
            await self._send(live, {"message": "Forbidden", "connectionId": live.id, "requestId": request_id})
            return
        route = self.api.routes[key]
        if route.integration is None:
            return
        status, reply = await self._run_integration(live, route, "MESSAGE", body, request_id)
        if reply is not None:
            await live.queue.put(reply)
        elif status >= 400 or status == 0:
            await self._send(
                live, {"message": "Internal server error", "connectionId": live.id, "requestId": request_id}
            )

    async def _send(self, live: _Connection, message: dict[str, Any]) -> None:
        await live.queue.put(json.dumps(message))

    # -- integrations ----------------------------------------------------------------------------------

    async def _run_integration(
        self, live: _Connection, route: Route, event_type: str, body: str, request_id: str | None = None
    ) -> tuple[int, str | None]:
        """Runs the route's integration off the loop (it is blocking HTTP): (status, the two-way reply or None)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(self._integrate, live, route, event_type, body, request_id or str(uuid.uuid4()))
        return await loop.run_in_executor(None, call)

    def _api_request(self, live: _Connection, route: Route, event_type: str, body: str, request_id: str) -> ApiRequest:
        extra: dict[str, Any] = {
            "connectionId": live.id,
            "routeKey": route.key,
            "eventType": event_type,
            "messageDirection": "IN",
            "connectedAt": live.connected_at_ms,
            "apiId": self.api.api_id,
        }
        if event_type == "MESSAGE":
            extra["messageId"] = base64.urlsafe_b64encode(secrets.token_bytes(10)).decode()
        if event_type == "DISCONNECT":
            extra["disconnectStatusCode"] = live.close_code
            extra["disconnectReason"] = live.close_reason
        host = live.headers.get("Host") or live.headers.get("host") or ""
        return ApiRequest(
            method="GET" if event_type == "CONNECT" else "POST",
            resource_path=route.key,
            path="/",
            query=live.query if event_type == "CONNECT" else {},
            headers=live.headers if event_type == "CONNECT" else {"Host": host},
            body=body,
            stage=self.api.stage,
            request_id=request_id,
            identity=live.identity,
            account_id=ACCOUNT_ID,
            extra_context=extra | {"domainName": host, "domainPrefix": host.split(".", 1)[0]},
        )

    def _integrate(
        self, live: _Connection, route: Route, event_type: str, body: str, request_id: str
    ) -> tuple[int, str | None]:
        integration = route.integration
        assert integration is not None
        try:
            request = self._api_request(live, route, event_type, body, request_id)
            key = evaluate_selection(integration.template_selection or DEFAULT_KEY, body) or DEFAULT_KEY
            template = integration.request_templates.get(key) or integration.request_templates.get(DEFAULT_KEY)
            if template is None and integration.passthrough == "NEVER":
                return 415, None
            rendered = body if template is None else render_request(template, request)
            if integration.type == "MOCK":
                status, backend = 200, rendered
            elif integration.type == "AWS":
                status, backend = self._call_service(integration, rendered)
            else:
                raise RuntimeError(f"integration type {integration.type} is not emulated")
            if not route.two_way:
                return status, None
            response = integration.response_for(status)
            if response is None:
                return status, (backend if 200 <= status < 300 else None)
            selected = evaluate_selection(response.template_selection or DEFAULT_KEY, backend) or DEFAULT_KEY
            answer = response.templates.get(selected) or response.templates.get(DEFAULT_KEY)
            if answer is None:
                return status, backend
            return status, render_response(answer, request, backend).body
        except Exception as error:
            LOG.exception("WebSocket %s %s of %s failed", event_type, route.key, live.id)
            self.internal_errors.append(f"{route.key}: {type(error).__name__}: {error}")
            return 0, None

    def _call_service(self, integration: WsIntegration, body: str) -> tuple[int, str]:
        content_type, target_prefix, signing_name = _service_protocol(integration.service)
        headers = {"Content-Type": content_type, "X-Amz-Target": f"{target_prefix}.{integration.action}"}
        url = f"{self._endpoint}/"
        aws_request = AWSRequest(method="POST", url=url, data=body.encode(), headers=headers)
        SigV4Auth(self._role_credentials(integration.credentials), signing_name, integration.region).add_auth(
            aws_request
        )
        try:
            response = self._http.request(
                "POST",
                url,
                body=aws_request.body,
                headers=dict(aws_request.headers.items()),
                timeout=urllib3.Timeout(connect=5.0, read=integration.timeout_seconds),
            )
        except urllib3.exceptions.HTTPError as error:
            LOG.error("%s %s failed: %s", integration.service, integration.action, error)
            return 504, ""
        text = response.data.decode("utf-8", errors="replace")
        if response.status >= 300:
            LOG.warning("%s %s answered %d: %s", integration.service, integration.action, response.status, text[:300])
        return response.status, text

    # -- the management API (@connections) -------------------------------------------------------------

    def manage(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, bytes, dict[str, str]]:
        """One ``@connections`` request: (status, body, headers), as AWS answers it."""
        path, _, query = target.partition("?")
        prefix = f"/{self.api.stage}/@connections/"
        if not path.startswith(prefix) or method not in ("POST", "GET", "DELETE"):
            return _error(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        connection_id = unquote(path[len(prefix) :])
        try:
            credential = self._management_verifier.verify(_Signed(method, headers, path, query, body))
        except sigv4.SigV4Error as error:
            failure = error.failure is sigv4.SigV4Failure.MISSING
            return _error(
                403, error.message, "MissingAuthenticationTokenException" if failure else error.error_type or ""
            )
        api = self.api
        resource = (
            f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api.api_id}/{api.stage}/{method}/@connections/{connection_id}"
        )
        if isinstance(credential, RoleCredential):
            denied = self._authorize(credential, MANAGE_CONNECTIONS, resource)
            if denied is not None:
                return _error(403, denied, "AccessDeniedException", key="Message")
        if method == "POST" and len(body) > MAX_MESSAGE_BYTES:
            return _error(413, "Message too long", "PayloadTooLargeException")
        loop = self._loop
        assert loop is not None
        action = {"POST": self._post, "GET": self._describe, "DELETE": self._delete}[method]
        future = asyncio.run_coroutine_threadsafe(action(connection_id, body), loop)
        found = future.result(timeout=LOOP_TIMEOUT_SECONDS)
        if found is None:
            return _error(410, None, "GoneException")
        return found

    async def _post(self, connection_id: str, body: bytes) -> tuple[int, bytes, dict[str, str]] | None:
        live = self._connections.get(connection_id)
        if live is None or live.socket is None:
            return None
        if live.queue.qsize() >= MAX_QUEUED:
            LOG.warning("connection %s reads nothing (%d messages waiting): disconnected", connection_id, MAX_QUEUED)
            asyncio.get_running_loop().create_task(live.socket.close(1008, "Too many messages waiting"))
            return None
        live.queue.put_nowait(body.decode("utf-8", errors="replace"))
        return 200, b"", {}

    async def _describe(self, connection_id: str, _body: bytes) -> tuple[int, bytes, dict[str, str]] | None:
        live = self._connections.get(connection_id)
        if live is None:
            return None
        answer = {  # the wire names of GetConnection's output (botocore's model: connectedAt, identity, ...)
            "connectedAt": _iso(live.connected_at_ms),
            "identity": {"sourceIp": live.identity.get("sourceIp"), "userAgent": live.identity.get("userAgent")},
            "lastActiveAt": _iso(live.last_active_ms),
        }
        return 200, json.dumps(answer).encode(), {"Content-Type": "application/json"}

    async def _delete(self, connection_id: str, _body: bytes) -> tuple[int, bytes, dict[str, str]] | None:
        live = self._connections.get(connection_id)
        if live is None or live.socket is None:
            return None
        asyncio.get_running_loop().create_task(live.socket.close(1000, ""))
        return 204, b"", {}


def _raise_refused(error: sigv4.SigV4Error) -> dict[str, str | None]:
    if error.failure is sigv4.SigV4Failure.MISSING:
        raise _Refused(403, sigv4.MISSING_TOKEN, "MissingAuthenticationTokenException")
    raise _Refused(403, error.message, error.error_type or "")


def _error(
    status: int, message: str | None, error_type: str, *, key: str = "message"
) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": error_type} if error_type else {}
    return status, json.dumps({key: message}).encode(), headers | {"x-amzn-RequestId": str(uuid.uuid4())}


class _ManagementServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET

    def __init__(self, address: tuple[str, int], handler: type[_ManagementHandler], api: LocalWebSocketApi) -> None:
        self.api = api
        super().__init__(address, handler)


class _ManagementHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "taskrail-local-websocket"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("@connections: " + format, *args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if 0 < length <= 4 * MAX_MESSAGE_BYTES else b""
        refused = guard.handler_refusal(self, browsers=False)
        api = cast(_ManagementServer, self.server).api
        if refused is not None or length > 4 * MAX_MESSAGE_BYTES:
            status, answer, headers = _error(
                403, refused.message if refused else "Request Too Long", "ForbiddenException"
            )
            self.close_connection = True
        else:
            status, answer, headers = api.manage(self.command, self.path, list(self.headers.items()), body)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve


# -- the stack's emulator ------------------------------------------------------------------------------


class WebSocketEmulator:
    """The template's WebSocket API, if it has one. Started before Lambda: the functions' environments name the
    API's callback URL, which becomes the local ``@connections`` listener's. A reset provisions the API again (a new
    API id, which the IAM policies then name): the server starts again with it, on the same ports, so the running
    functions' environments stay right."""

    name: ClassVar[str] = "websocket"
    restart_on_reset: ClassVar[bool] = True

    def __init__(self) -> None:
        self.server: LocalWebSocketApi | None = None
        self._ports = (0, 0)

    def start(self, context: Any) -> None:
        if not websocket_apis(context.template):
            return
        definition = WebSocketApiDefinition.from_template(context.template, context.resolve)
        iam = context.iam
        authorize: Authorize | None = None
        if iam is not None:

            def authorize(credential: Any, action: str, resource: str) -> str | None:
                return cast("str | None", iam.role_delivery(credential.role_arn, action, resource))

        port, management_port = self._ports
        # With IAM enforced, every local caller holds README's WebSocket statement, and $connect evaluates it
        policies: CallerPolicies | None = None
        if iam is not None:
            connect_policy = caller_connect_policy(definition)

            def policies(_caller: Any) -> list[Policy]:
                return [connect_policy]

        self.server = LocalWebSocketApi(
            definition,
            context.endpoint,
            authorize=authorize,
            port=port,
            management_port=management_port,
            caller_policies=policies,
        )
        self.server.start()
        self._ports = (self.server.port, self.server.management_port)
        for spec in context.resources.functions.values():
            spec.environment.update({k: self.server.localize(v) for k, v in spec.environment.items()})

    def localize(self, text: str) -> str:
        return self.server.localize(text) if self.server is not None else text

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
