"""Issue 15, live progress on the local stack: the template's WebSocket API (taskrail/local/websocket.py), the push
pipe from the Tasks stream and the push function, end to end. Each client is a real WebSocket client signing its
connect request as a local user; waits are deadlines on what arrives, never sleeps."""

from __future__ import annotations

import json
import re
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.credentials import Credentials
from typer.testing import CliRunner
from websockets.sync.client import ClientConnection, connect

from task_common.contract import TIMESTAMP_PATTERN
from taskrail import cli
from taskrail.cli import app
from taskrail.client import TaskrailClient
from taskrail.live import signed_connect_url
from taskrail.local.region import REGION
from taskrail.local.stack import LOCAL_CREDENTIALS, LocalStack
from taskrail.local.users import ALICE, BOB
from tests.e2e.browser import browser, chromium, console_url, page  # noqa: F401 -- fixtures (page, and what it uses)
from tests.e2e.polling import wait_for

pytestmark = pytest.mark.e2e

TERMINAL = {"SUCCEEDED", "FAILED", "REJECTED", "CANCELLED"}
KEYS = {
    "alice": Credentials(ALICE.access_key_id, ALICE.secret_access_key),
    "bob": Credentials(BOB.access_key_id, BOB.secret_access_key),
}
DEADLINE = 120.0


@contextmanager
def subscribed(stack: LocalStack, user: str, task_id: str | None = None) -> Iterator[ClientConnection]:
    """A WebSocket of ``user`` subscribed to ``task_id`` (None: all of the user's tasks), the subscription stored."""
    assert stack.info is not None and stack.info.websocket_url
    with connect(signed_connect_url(stack.info.websocket_url, KEYS[user], REGION), open_timeout=30) as client:
        client.send(json.dumps({"action": "subscribe", **({"taskId": task_id} if task_id else {})}))
        answer = json.loads(client.recv(timeout=30))
        assert answer == {"type": "subscribed", "taskId": task_id or "*"}, answer
        yield client


def messages_until_terminal(
    client: ClientConnection, task_id: str, timeout: float = DEADLINE, arrivals: list[float] | None = None
) -> list[dict[str, Any]]:
    """Every progress message of ``task_id`` until its terminal one (others' are kept out of the list); the wall
    clock time each one arrived is appended to ``arrivals``."""
    deadline = time.monotonic() + timeout
    received: list[dict[str, Any]] = []
    while not received or received[-1]["status"] not in TERMINAL:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no terminal message for {task_id} within {timeout} s; got {received}")
        message = json.loads(client.recv(timeout=remaining))
        if message.get("type") == "progress" and message.get("taskId") == task_id:
            received.append(message)
            if arrivals is not None:
                arrivals.append(time.time())
    return received


def latencies(received: list[dict[str, Any]], arrivals: list[float]) -> list[float]:
    """Seconds from each change's write (its ``updatedAt``, the writer's clock on this machine) to its arrival."""
    written = [datetime.fromisoformat(m["updatedAt"].replace("Z", "+00:00")).timestamp() for m in received]
    return [arrived - at for arrived, at in zip(arrivals, written, strict=True)]


def sleep_task(client: TaskrailClient, steps: int = 5, seconds: float = 0.5) -> str:
    accepted = client.submit("diagnostic.sleep", {"seconds": seconds, "steps": steps})
    return str(accepted["taskId"])


def connections_table(stack: LocalStack) -> str:
    assert stack.resources is not None
    return stack.resources.ref("ConnectionsTable")


def connection_row(stack: LocalStack, connection_id: str) -> dict[str, Any] | None:
    key = {"connectionId": {"S": connection_id}}
    return stack.clients("dynamodb").get_item(TableName=connections_table(stack), Key=key).get("Item")


def test_a_subscriber_receives_every_progress_change_and_the_terminal_status_in_order(
    stack: LocalStack, alice: TaskrailClient
) -> None:
    with subscribed(stack, "alice") as client:
        task_id = sleep_task(alice, steps=5)
        received = messages_until_terminal(client, task_id)
    progress = [m["progress"] for m in received if m["status"] == "RUNNING" and m["progress"]]
    steps = list(dict.fromkeys(progress))  # a write that changed neither repeats the state: kept in order
    assert steps == [20, 40, 60, 80, 100], received
    assert progress == sorted(progress), "the stream's order is the order received"
    final = received[-1]
    assert final["status"] == "SUCCEEDED" and final["progress"] == 100
    assert final["resultKey"] == f"tasks/{task_id}/result.json"
    stored = alice.get(task_id)
    assert (final["status"], final["attempt"]) == (stored["status"], stored["attempt"])
    # Every message's time is the API's form (the claim's and the outcome's are the workflow's EnteredTime, which
    # moto writes as "…177195+00:00")
    off_contract = [m["updatedAt"] for m in received if not re.fullmatch(TIMESTAMP_PATTERN, m.get("updatedAt", ""))]
    assert off_contract == [], off_contract
    print(f"{len(received)} messages for {task_id}:", [(m["status"], m["progress"], m["updatedAt"]) for m in received])


def test_a_subscription_to_one_task_receives_that_task_only(stack: LocalStack, alice: TaskrailClient) -> None:
    other = sleep_task(alice, steps=2, seconds=0.2)
    watched = alice.submit("diagnostic.sleep", {"seconds": 0.4, "steps": 2})["taskId"]
    with subscribed(stack, "alice", watched) as client:
        received = messages_until_terminal(client, watched)
    assert {m["taskId"] for m in received} == {watched}
    assert other != watched


def test_another_users_subscription_to_the_task_receives_nothing(
    stack: LocalStack, alice: TaskrailClient, bob: TaskrailClient
) -> None:
    with subscribed(stack, "alice") as alice_ws:
        task_id = sleep_task(alice, steps=3, seconds=0.3)
        with subscribed(stack, "bob", task_id) as bob_on_it, subscribed(stack, "bob") as bob_all:
            messages_until_terminal(alice_ws, task_id)
            # bob's own task, written after alice's: records are pushed in the stream's order, so once bob's own
            # terminal message is here, every record of alice's task has been pushed (and none came to bob).
            own = alice_free_marker(bob)
            first = json.loads(bob_all.recv(timeout=DEADLINE))
            assert first["taskId"] == own, f"bob received {first}"
            messages_until_terminal(bob_all, own)
            bob_on_it.send(json.dumps({"action": "subscribe", "taskId": task_id}))  # a round trip on that socket
            assert json.loads(bob_on_it.recv(timeout=30)) == {"type": "subscribed", "taskId": task_id}
    print(f"bob's subscriptions to alice's {task_id} and to all his tasks received nothing of it")


def alice_free_marker(bob: TaskrailClient) -> str:
    return str(bob.submit("diagnostic.echo", {"payload": f"marker {uuid.uuid4()}"})["taskId"])


def test_a_disconnect_removes_the_connection_row(stack: LocalStack) -> None:
    before = set(stack.websocket.connection_ids())
    with subscribed(stack, "alice"):
        connection_id = wait_for(
            lambda: next(iter(set(stack.websocket.connection_ids()) - before), None), 30, "the new connection"
        )
        row = connection_row(stack, connection_id)
        assert row is not None and row["ownerId"] == {"S": ALICE.principal_id} and row["taskId"] == {"S": "*"}
    wait_for(lambda: connection_row(stack, connection_id) is None, 30, "the row deleted by $disconnect")
    print(f"connection {connection_id}: row removed on disconnect")


def test_the_push_deletes_the_row_of_a_connection_that_is_gone(stack: LocalStack, alice: TaskrailClient) -> None:
    """A row whose connection no longer exists (its client went away without $disconnect, as on AWS when the row
    outlives it): the push's post answers 410 GoneException and the push deletes the row; the live subscriber still
    receives the task."""
    gone = "R29uZUNvbm5lY3Rpb24="
    table = connections_table(stack)
    stack.clients("dynamodb").put_item(
        TableName=table,
        Item={
            "connectionId": {"S": gone}, "ownerId": {"S": ALICE.principal_id}, "taskId": {"S": "*"},
            "connectedAt": {"N": str(int(time.time() * 1000))}, "expiresAt": {"N": str(int(time.time()) + 7200)},
        },
    )  # fmt: skip
    with subscribed(stack, "alice") as client:
        task_id = sleep_task(alice, steps=1, seconds=0.2)
        assert messages_until_terminal(client, task_id)[-1]["status"] == "SUCCEEDED"
    wait_for(lambda: connection_row(stack, gone) is None, 30, "the gone connection's row deleted by the push")
    print(f"row {gone} deleted after GoneException")


#: A reader's bound on a change's way from its write to the reader: measured 90-660 ms here (the push's p99 is
#: ~140 ms, docs/BENCHMARKS.md §11). A stalled connection whose posts held the batch for the push's 1-s budget would
#: put each later change a second further behind (the writes are ~0.1 s apart): 0.1, 1.0, 1.9, … 6.6 s when the
#: local @connections was made to hang 1.2 s on the stalled connection's posts.
READER_LATENCY_BOUND_SECONDS = 2.0


def test_a_client_that_stops_reading_does_not_delay_another(stack: LocalStack, alice: TaskrailClient) -> None:
    before = set(stack.websocket.connection_ids())
    with subscribed(stack, "alice"):
        (stalled_id,) = wait_for(lambda: set(stack.websocket.connection_ids()) - before, 30, "the stalled connection")
        # It reads nothing from now on: 16 MB queued for it fill every buffer between it and the server.
        manager = boto3.client(
            "apigatewaymanagementapi", endpoint_url=stack.websocket.management_url, region_name=REGION,
            **LOCAL_CREDENTIALS,
        )  # fmt: skip
        for _ in range(128):
            manager.post_to_connection(ConnectionId=stalled_id, Data=b"x" * (127 * 1024))
        with subscribed(stack, "alice") as reader:
            task_id = sleep_task(alice, steps=5, seconds=0.5)
            arrivals: list[float] = []
            received = messages_until_terminal(reader, task_id, arrivals=arrivals)
        assert [m["progress"] for m in received if m["status"] == "RUNNING" and m["progress"]][-1] == 100
        assert received[-1]["status"] == "SUCCEEDED"
        waiting = stack.websocket.queued(stalled_id)
        assert waiting > 0, "the stalled client still has messages waiting"
    delays = latencies(received, arrivals)
    assert max(delays) < READER_LATENCY_BOUND_SECONDS, f"the reader's delays (s): {[round(d, 3) for d in delays]}"
    print(
        f"the reader got {len(received)} messages in order while {stalled_id} read nothing ({waiting} waiting);"
        f" write to reader: median {statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
    )


# -- the CLI ----------------------------------------------------------------------------------------------------

RUNNER = CliRunner()
WATCH_BACKSTOP_SECONDS = 60.0
WATCH_PUSHED_WITHIN_SECONDS = 20.0  # the task runs 5 s; the rest is the CLI's start and the push's latency


def test_watch_says_it_is_live_and_ends_with_the_outcome(
    stack: LocalStack, alice: TaskrailClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Live, the watch reads the task again when a change is pushed, else after the backstop: with the backstop at
    # 60 s, a watch that ends within seconds of the task was woken by pushes (without them it ends after 60 s)
    monkeypatch.setattr(cli, "LIVE_BACKSTOP_SECONDS", WATCH_BACKSTOP_SECONDS)
    state = tmp_path / "local.json"
    stack.write_state(state)
    task_id = sleep_task(alice, steps=3, seconds=5)
    assert alice.get(task_id)["status"] not in TERMINAL  # the watch's first read sees it unfinished (5 s to run)
    started = time.monotonic()
    result = RUNNER.invoke(app, ["watch", task_id, "--json", "--local-state", str(state)])
    took = time.monotonic() - started
    assert result.exit_code == 0, result.output
    assert "live: WebSocket (ws://127.0.0.1:" in result.stderr
    views = json.loads(result.stdout)["tasks"]
    assert [v["status"] for v in views] == ["SUCCEEDED"]
    assert took < WATCH_PUSHED_WITHIN_SECONDS, f"the watch took {took:.1f} s: it waited for the backstop, not a push"
    print(result.stderr.strip(), f"- ended {took:.1f} s after it started (task {views[0]['elapsedSeconds']} s)")


def test_watch_polls_when_the_stack_has_no_websocket_channel(
    stack: LocalStack, alice: TaskrailClient, tmp_path: Path
) -> None:
    state = tmp_path / "local.json"
    stack.write_state(state)
    recorded = json.loads(state.read_text())
    state.write_text(json.dumps(recorded | {"websocket_url": ""}))
    task_id = str(alice.submit("diagnostic.echo", {"payload": "polled"})["taskId"])
    result = RUNNER.invoke(app, ["watch", task_id, "--json", "--local-state", str(state)])
    assert result.exit_code == 0, result.output
    assert "polling every 0.5s: no WebSocket channel" in result.stderr
    print(result.stderr.strip())


# -- the console -------------------------------------------------------------------------------------------------


def test_the_console_relays_each_pushed_change_to_its_page(stack: LocalStack, alice: TaskrailClient) -> None:
    base = console_url(stack)
    opened = requests.get(f"{base}/api/live", params={"after": -1}, timeout=60).json()  # opens the relay at once
    assert opened["channel"] == "websocket"
    task_id = sleep_task(alice, steps=2, seconds=0.3)
    after, seen = opened["sequence"], []
    deadline = time.monotonic() + DEADLINE
    while not any(c["taskId"] == task_id and c["status"] == "SUCCEEDED" for c in seen):
        assert time.monotonic() < deadline, f"the relay gave {seen}"
        answer = requests.get(f"{base}/api/live", params={"after": after}, timeout=60).json()
        after, seen = answer["sequence"], seen + answer["changes"]
    mine = [(c["status"], c["progress"]) for c in seen if c["taskId"] == task_id]
    assert mine[-1] == ("SUCCEEDED", 100) and ("RUNNING", 50) in mine
    print("relayed to the console:", mine)


def test_the_console_page_says_it_is_live(stack: LocalStack, page: Any) -> None:  # noqa: F811 (the fixture)
    from playwright.sync_api import expect

    page.goto(console_url(stack))
    expect(page.get_by_test_id("channel")).to_have_text("live: WebSocket", timeout=30_000)


def test_the_console_page_polls_and_says_why_when_there_is_no_channel(stack: LocalStack, page: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    # Given the console's relay answering as it does for a stack without a WebSocket channel
    no_channel = json.dumps({"channel": None, "reason": "no WebSocket channel"})
    page.route(
        "**/api/live*", lambda route: route.fulfill(status=200, content_type="application/json", body=no_channel)
    )

    # When the page opens, Then it says it polls, and why, and it reads the list every 2 s (not the 30-s backstop)
    page.goto(console_url(stack))
    expect(page.get_by_test_id("channel")).to_have_text("polling every 2 s: no WebSocket channel", timeout=30_000)
    for _ in range(2):
        with page.expect_request(lambda request: "/api/executions" in request.url, timeout=3_500):
            pass
    print("the page polls every 2 s: no WebSocket channel")
