"""The local WebSocket API (taskrail/local/websocket.py) over a fresh moto server with IAM enforced, provisioned from a
template shaped as the LiveProgress construct synthesizes (tests/local/fixtures/websocket/): a real WebSocket client,
SigV4 on the upgrade request, the VTL integrations calling DynamoDB as their roles, the @connections API through
boto3's apigatewaymanagementapi client.

AWS's behaviour cited: "Quotas for configuring and running a WebSocket in API Gateway"
(https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html):
connection duration 2 hours, idle connection timeout 10 minutes, frame 32 KB, message payload 128 KB ("If a larger
message (or larger frame size) is received, the connection is closed with code 1009"); "Create routes for WebSocket
APIs" (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-routes.html): no matching
route and no $default route: an error; $disconnect runs when either side disconnects; the 410 GoneException of the
management API for a connection that does not exist any more (https://repost.aws/knowledge-center/410-gone-api-gateway).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from taskrail.live import LiveChannel, LiveUnavailable, signed_connect_url
from taskrail.local import websocket as ws
from taskrail.local.iam.actions import Access, ApiCall
from taskrail.local.iam.enforce import LocalIam
from taskrail.local.iam.principals import role_credential
from taskrail.local.provision import provision
from taskrail.local.region import ACCOUNT_ID, REGION
from taskrail.local.services.server import threaded_server
from taskrail.local.users import ALICE, BOB, known_credentials
from taskrail.local.websocket_api import WebSocketApiDefinition
from tests.e2e.polling import wait_for

TEMPLATE_PATH = Path(__file__).parent / "fixtures" / "websocket" / "live_api.template.json"
TEMPLATE: dict[str, Any] = json.loads(TEMPLATE_PATH.read_text())
ALICE_KEYS = Credentials(ALICE.access_key_id, ALICE.secret_access_key)
BOB_KEYS = Credentials(BOB.access_key_id, BOB.secret_access_key)


@dataclass
class Live:
    server: ws.LocalWebSocketApi
    endpoint: str
    table: str
    resources: Any
    iam: LocalIam
    resolve: Any = None

    def aws(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id="testing",
            aws_secret_access_key="testing", aws_session_token="testing",
        )  # fmt: skip

    def row(self, connection_id: str) -> dict[str, Any] | None:
        item = self.aws("dynamodb").get_item(TableName=self.table, Key={"connectionId": {"S": connection_id}})
        return item.get("Item")

    def rows(self) -> list[dict[str, Any]]:
        return self.aws("dynamodb").scan(TableName=self.table)["Items"]

    def manager(self, role_logical_id: str) -> Any:
        """boto3's management API client, as the push function makes it, signed as a session of that role."""
        credential = role_credential(self.resources.attributes[role_logical_id]["Arn"], "push-progress")
        return boto3.client(
            "apigatewaymanagementapi", endpoint_url=self.server.management_url, region_name=REGION,
            **credential.client_kwargs(),
        )  # fmt: skip


def _authorize(iam: LocalIam) -> ws.Authorize:
    def authorize(credential: Any, action: str, resource: str) -> str | None:
        assert iam._enforcer is not None
        denied = iam._enforcer.check(
            credential, ApiCall("execute-api", "ManageConnections", (Access(action, resource),))
        )
        return None if denied is None else denied.message

    return authorize


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    iam = LocalIam(enforce=True)
    with threaded_server(credentials=iam.credentials(known_credentials()), authorizer=iam) as endpoint:
        iam.start(endpoint)
        clients = Live(None, endpoint, "", None, iam).aws  # type: ignore[arg-type]
        resources, resolve = provision(TEMPLATE, clients, stack_name="taskrail", cdk_out=str(TEMPLATE_PATH.parent))
        iam.load(TEMPLATE, resources)
        definition = WebSocketApiDefinition.from_template(TEMPLATE, resolve)
        with ws.LocalWebSocketApi(definition, endpoint, authorize=_authorize(iam)) as server:
            yield Live(server, endpoint, resources.attributes["ConnectionsTable"]["Ref"], resources, iam, resolve)


def open_as(live: Live, keys: Credentials = ALICE_KEYS) -> ClientConnection:
    return connect(signed_connect_url(live.server.url, keys, REGION), open_timeout=10, ping_interval=None)


def connection_id_of(live: Live, before: set[str]) -> str:
    return wait_for(lambda: next(iter(set(live.server.connection_ids()) - before), None), 10, "a new connection")


def subscribe(client: ClientConnection, task_id: str | None = None) -> dict[str, Any]:
    client.send(json.dumps({"action": "subscribe", **({"taskId": task_id} if task_id else {})}))
    return json.loads(client.recv(timeout=10))


# -- $connect: SigV4 on the upgrade request ------------------------------------------------------------------


def test_connect_without_a_signature_is_refused_with_403_and_stores_nothing(live: Live) -> None:
    # the table's connections before (a previous test's may still be leaving: its $disconnect deletes it meanwhile)
    before = {row["connectionId"]["S"] for row in live.rows()}
    with pytest.raises(InvalidStatus) as refused:
        connect(live.server.url, open_timeout=10)
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body) == {"message": "Missing Authentication Token"}
    assert {row["connectionId"]["S"] for row in live.rows()} <= before  # nothing stored for the refused connect
    print("no signature:", refused.value.response.status_code, refused.value.response.body)


def test_connect_with_a_wrong_secret_is_refused_with_the_signature_mismatch(live: Live) -> None:
    wrong = Credentials(ALICE.access_key_id, "not-alices-secret")
    with pytest.raises(InvalidStatus) as refused:
        connect(signed_connect_url(live.server.url, wrong, REGION), open_timeout=10)
    assert refused.value.response.status_code == 403
    assert "signature we calculated does not match" in json.loads(refused.value.response.body)["message"]


def test_a_page_in_a_browser_is_refused_before_the_signature_is_read(live: Live) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(
            signed_connect_url(live.server.url, ALICE_KEYS, REGION),
            open_timeout=10,
            additional_headers={"Origin": "http://127.0.0.1:9999"},
        )
    assert refused.value.response.status_code == 403


def test_a_caller_without_invoke_on_connect_is_refused_403_and_one_with_readmes_statement_connects(live: Live) -> None:
    """$connect's IAM authorization evaluates the caller's execute-api:Invoke on {apiId}/{stage}/$connect ("Control
    access to WebSocket APIs with IAM authorization"): alice holds README's statement, bob holds nothing."""
    policy = ws.caller_connect_policy(live.server.api)

    def policies(caller: Any) -> list[Any]:
        return [policy] if caller.principal_id == ALICE.principal_id else []

    with ws.LocalWebSocketApi(live.server.api, live.endpoint, caller_policies=policies) as checked:
        with pytest.raises(InvalidStatus) as refused:
            connect(signed_connect_url(checked.url, BOB_KEYS, REGION), open_timeout=10)
        assert refused.value.response.status_code == 403
        denial = json.loads(refused.value.response.body)["message"]
        api = live.server.api
        resource = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api.api_id}/{api.stage}/$connect"
        assert denial == (
            f"User: {BOB.arn} is not authorized to perform: execute-api:Invoke on resource: {resource} because no "
            "identity-based policy allows the execute-api:Invoke action"
        )
        with connect(signed_connect_url(checked.url, ALICE_KEYS, REGION), open_timeout=10) as client:
            assert subscribe(client, "t-invoke")["type"] == "subscribed"
    print("bob:", denial)


def test_a_signed_connect_stores_the_owner_and_the_connection_times(live: Live) -> None:
    before = set(live.server.connection_ids())
    with open_as(live) as client:
        connection_id = connection_id_of(live, before)
        row = wait_for(lambda: live.row(connection_id), 10, "the connection row")
        assert row["ownerId"] == {"S": ALICE.principal_id}
        assert int(row["expiresAt"]["N"]) == int(row["connectedAt"]["N"]) // 1000 + 7200
        assert subscribe(client, "t-1") == {"type": "subscribed", "taskId": "t-1"}


def test_the_header_form_of_sigv4_connects_too(live: Live) -> None:
    http_url = "http" + live.server.url.removeprefix("ws")
    request = AWSRequest(method="GET", url=http_url)
    SigV4Auth(BOB_KEYS, "execute-api", REGION).add_auth(request)
    headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
    before = set(live.server.connection_ids())
    with connect(live.server.url, additional_headers=headers, open_timeout=10) as client:
        connection_id = connection_id_of(live, before)
        assert subscribe(client) == {"type": "subscribed", "taskId": "*"}
        assert live.row(connection_id)["ownerId"] == {"S": BOB.principal_id}  # type: ignore[index]


# -- routes -----------------------------------------------------------------------------------------------------


def test_subscribe_is_two_way_and_stored_before_the_answer(live: Live) -> None:
    before = set(live.server.connection_ids())
    with open_as(live) as client:
        connection_id = connection_id_of(live, before)
        answer = subscribe(client, "task-'quoted\"")
        assert answer == {"type": "subscribed", "taskId": "task-'quoted\""}
        assert live.row(connection_id)["taskId"] == {"S": "task-'quoted\""}  # type: ignore[index]
        assert subscribe(client) == {"type": "subscribed", "taskId": "*"}
        assert live.row(connection_id)["taskId"] == {"S": "*"}  # type: ignore[index]


@pytest.mark.parametrize("frame", ['{"action": "unsubscribe"}', '{"taskId": "t"}', "not json"])
def test_a_message_no_route_selects_gets_an_error_and_changes_nothing(live: Live, frame: str) -> None:
    before = set(live.server.connection_ids())
    with open_as(live) as client:
        connection_id = connection_id_of(live, before)
        stored = wait_for(lambda: live.row(connection_id), 10, "the connection row")
        client.send(frame)
        answer = json.loads(client.recv(timeout=10))
        assert answer["message"] == "Forbidden"
        assert answer["connectionId"] == connection_id
        assert live.row(connection_id) == stored
        print(frame, "->", answer)


def test_disconnect_runs_when_the_client_closes_and_removes_the_row(live: Live) -> None:
    before = set(live.server.connection_ids())
    with open_as(live):
        connection_id = connection_id_of(live, before)
        wait_for(lambda: live.row(connection_id), 10, "the connection row")
    wait_for(lambda: live.row(connection_id) is None, 10, "the row deleted by $disconnect")
    assert connection_id not in live.server.connection_ids()


def test_a_message_over_128_kb_closes_the_connection_with_1009(live: Live) -> None:
    before = set(live.server.connection_ids())
    with open_as(live) as client:
        connection_id = connection_id_of(live, before)
        client.send(json.dumps({"action": "subscribe", "taskId": "x" * (ws.MAX_MESSAGE_BYTES + 1)}))
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    wait_for(lambda: live.row(connection_id) is None, 10, "the row deleted by $disconnect")


def test_a_binary_frame_closes_the_connection_with_1003_and_disconnects(live: Live) -> None:
    """ "Binary media types for WebSocket APIs in API Gateway": a binary frame is rejected and the client
    disconnected with code 1003; nothing is routed, and $disconnect runs."""
    before = set(live.server.connection_ids())
    with open_as(live) as client:
        connection_id = connection_id_of(live, before)
        client.send(json.dumps({"action": "subscribe", "taskId": "t-binary"}).encode())  # bytes: a binary frame
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == ws.UNSUPPORTED_DATA == 1003
    wait_for(lambda: live.row(connection_id) is None, 10, "the row deleted by $disconnect")


def test_the_limits_are_aws_s() -> None:
    assert (ws.IDLE_TIMEOUT_SECONDS, ws.MAX_LIFETIME_SECONDS) == (600, 7200)
    assert (ws.MAX_FRAME_BYTES, ws.MAX_MESSAGE_BYTES) == (32 * 1024, 128 * 1024)


def test_an_idle_connection_is_closed_and_disconnected(live: Live) -> None:
    """AWS closes a connection idle for 10 minutes (here 0.5 s, the same code path); $disconnect runs."""
    definition = live.server.api
    with ws.LocalWebSocketApi(definition, live.endpoint, idle_timeout=0.5) as short:
        before = set(short.connection_ids())
        with connect(signed_connect_url(short.url, ALICE_KEYS, REGION), open_timeout=10) as client:
            connection_id = wait_for(lambda: next(iter(set(short.connection_ids()) - before), None), 10, "connection")
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == ws.GOING_AWAY
        wait_for(lambda: live.row(connection_id) is None, 10, "the row deleted by $disconnect")


def test_a_connection_ends_at_the_lifetime_limit_even_while_active(live: Live) -> None:
    definition = live.server.api
    with (
        ws.LocalWebSocketApi(definition, live.endpoint, max_lifetime=1.0) as short,
        connect(signed_connect_url(short.url, ALICE_KEYS, REGION), open_timeout=10) as client,
        pytest.raises(ConnectionClosed) as closed,
    ):
        for _ in range(10_000):  # active: a subscribe every round trip (the last may race $disconnect)
            subscribe(client, "t")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == ws.GOING_AWAY


# -- the management API ------------------------------------------------------------------------------------------


def test_post_to_connection_reaches_the_client_and_get_describes_it(live: Live) -> None:
    before = set(live.server.connection_ids())
    manager = live.manager("PushRole")
    with open_as(live) as client:
        connection_id = connection_id_of(live, before)
        big = json.dumps(
            {"type": "progress", "pad": "é" * 40_000}, ensure_ascii=False
        )  # over one 32 KB frame: fragmented
        manager.post_to_connection(ConnectionId=connection_id, Data=b'{"type":"progress","progress":10}')
        manager.post_to_connection(ConnectionId=connection_id, Data=big.encode())
        assert json.loads(client.recv(timeout=10)) == {"type": "progress", "progress": 10}
        assert client.recv(timeout=10) == big
        described = manager.get_connection(ConnectionId=connection_id)
        assert described["Identity"]["SourceIp"] == "127.0.0.1"
        manager.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=10)
    wait_for(lambda: live.row(connection_id) is None, 10, "the row deleted by $disconnect")


def test_post_to_a_closed_or_unknown_connection_is_gone_410(live: Live) -> None:
    manager = live.manager("PushRole")
    before = set(live.server.connection_ids())
    with open_as(live):
        connection_id = connection_id_of(live, before)
    wait_for(lambda: connection_id not in live.server.connection_ids(), 10, "the connection closed")
    for target in (connection_id, "TnV2ZXJFeGlzdGVk"):
        with pytest.raises(ClientError) as gone:
            manager.post_to_connection(ConnectionId=target, Data=b"{}")
        assert gone.value.response["Error"]["Code"] == "GoneException"
        assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    with pytest.raises(ClientError) as gone:
        manager.get_connection(ConnectionId=connection_id)
    assert gone.value.response["Error"]["Code"] == "GoneException"
    print("post to a closed connection:", gone.value.response["Error"])


def test_a_role_without_manage_connections_is_denied(live: Live) -> None:
    before = set(live.server.connection_ids())
    with open_as(live):
        connection_id = connection_id_of(live, before)
        with pytest.raises(ClientError) as denied:
            live.manager("NoGrantRole").post_to_connection(ConnectionId=connection_id, Data=b"{}")
    error = denied.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert "is not authorized to perform: execute-api:ManageConnections" in error["Error"]["Message"]
    assert f"/live/POST/@connections/{connection_id}" in error["Error"]["Message"]
    print("denied:", error["Error"]["Message"])


def test_the_management_api_refuses_an_unsigned_request_and_a_message_over_128_kb(live: Live) -> None:
    unsigned = requests.post(f"{live.server.management_url}/@connections/abc", data=b"{}", timeout=10)
    assert unsigned.status_code == 403
    assert unsigned.json() == {"message": "Missing Authentication Token"}
    before = set(live.server.connection_ids())
    with open_as(live):
        connection_id = connection_id_of(live, before)
        with pytest.raises(ClientError) as large:
            live.manager("PushRole").post_to_connection(ConnectionId=connection_id, Data=b"x" * (128 * 1024 + 1))
    assert large.value.response["Error"]["Code"] == "PayloadTooLargeException"


def test_localize_maps_aws_urls_to_the_local_listeners(live: Live) -> None:
    api_id = live.server.api.api_id
    wss = f"wss://{api_id}.execute-api.{REGION}.amazonaws.com/live"
    https = f"https://{api_id}.execute-api.{REGION}.amazonaws.com/live"
    assert live.server.localize(wss) == live.server.url
    assert live.server.localize(https) == live.server.management_url


# -- the client (taskrail/live.py) -------------------------------------------------------------------------------


def test_the_live_channel_reconnects_and_subscribes_again_after_the_lifetime_limit(live: Live) -> None:
    """AWS ends every connection after 2 hours (here 1 s): the channel connects again, subscribes again (its row
    says so) and receives what is posted to the new connection; each reconnection wakes its reader."""
    with ws.LocalWebSocketApi(live.server.api, live.endpoint, max_lifetime=2.0) as short:
        manager = boto3.client(
            "apigatewaymanagementapi", endpoint_url=short.management_url, region_name=REGION,
            **role_credential(live.resources.attributes["PushRole"]["Arn"], "push").client_kwargs(),
        )  # fmt: skip
        with LiveChannel(short.url, ALICE_KEYS, REGION, task_id="t-9") as channel:
            wait_for(lambda: channel.connections >= 3, 30, "two reconnections")
            message = {"type": "progress", "taskId": "t-9", "status": "RUNNING", "progress": 50}

            def subscribed_again() -> bool:
                rows = [live.row(c) or {} for c in short.connection_ids()]
                return any(row.get("taskId") == {"S": "t-9"} for row in rows)

            def delivered() -> bool:
                for connection_id in short.connection_ids():  # it may end between the post and the delivery
                    with contextlib.suppress(ClientError):
                        manager.post_to_connection(ConnectionId=connection_id, Data=json.dumps(message).encode())
                return message in channel.messages

            wait_for(subscribed_again, 10, "the subscription stored again")
            wait_for(delivered, 30, "a post received after reconnecting", interval=0.2)
        print(f"{channel.connections} connections, the message received after reconnecting")


IDLE_SECONDS = 1.0  # API Gateway's 10 minutes, scaled down (the same code path)


def test_the_live_channels_resubscription_keeps_its_connection_past_the_idle_timeout(live: Live) -> None:
    """API Gateway closes a connection idle for 10 minutes; the channel re-subscribes every 5 (here 0.3 s against an
    idle timeout of 1 s), and each subscribe is activity: one connection, still open after three idle timeouts."""
    with (
        ws.LocalWebSocketApi(live.server.api, live.endpoint, idle_timeout=IDLE_SECONDS) as short,
        LiveChannel(short.url, ALICE_KEYS, REGION, task_id="t-idle", resubscribe_seconds=0.3) as channel,
    ):
        (connection_id,) = wait_for(short.connection_ids, 10, "the channel's connection")
        time.sleep(3 * IDLE_SECONDS)  # what is checked is that nothing happens meanwhile: no close, no reconnection
        assert channel.connections == 1
        assert short.connection_ids() == [connection_id]


def test_without_resubscribing_the_idle_timeout_closes_the_channels_connection(live: Live) -> None:
    """The control of the case above: a channel that re-subscribes less often than the idle timeout is closed by
    it, and connects again."""
    with (
        ws.LocalWebSocketApi(live.server.api, live.endpoint, idle_timeout=IDLE_SECONDS) as short,
        LiveChannel(short.url, ALICE_KEYS, REGION, task_id="t-idle", resubscribe_seconds=60) as channel,
    ):
        wait_for(lambda: channel.connections >= 2, 10, "a reconnection after the idle timeout")


def test_the_live_channel_is_unavailable_when_refused(live: Live) -> None:
    wrong = Credentials(ALICE.access_key_id, "not-alices-secret")
    with pytest.raises(LiveUnavailable, match="403"):
        LiveChannel(live.server.url, wrong, REGION).open()


def test_the_emulator_starts_again_on_its_ports_after_a_reset(live: Live) -> None:
    """A reset provisions the API again (a new id, which the policies name): the server serves it on the same ports,
    so the functions' environments (the @connections URL) stay right."""
    context = SimpleNamespace(
        template=TEMPLATE, resolve=live.resolve, endpoint=live.endpoint, iam=None,
        resources=SimpleNamespace(functions={}),
    )  # fmt: skip
    emulator = ws.WebSocketEmulator()
    assert emulator.restart_on_reset
    emulator.start(context)
    try:
        assert emulator.server is not None
        first = (emulator.server.url, emulator.server.management_url)
        emulator.stop()
        emulator.start(context)
        assert (emulator.server.url, emulator.server.management_url) == first
        with connect(signed_connect_url(emulator.server.url, ALICE_KEYS, REGION), open_timeout=10) as client:
            assert subscribe(client, "t-r")["type"] == "subscribed"
    finally:
        emulator.stop()
