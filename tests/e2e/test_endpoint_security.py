"""A web page on another origin cannot read, write or reset anything through the local stack's listeners.

The page is served from another loopback port (the worst case: to the browser it is *same-site* with every
listener, since sites ignore ports), opened in Debian's chromium through Playwright, and tries, against each
listener (the AWS endpoint, the API, a Lambda Runtime API, the console): ``fetch()`` reads, ``fetch()`` writes
(simple requests that need no preflight, and ones that do), a form POST, and a reset. Every attempt must fail:
either the browser is denied the answer (no CORS grant) or the listener refuses the request (403), and the
stack's data is unchanged afterwards: a finished task, a queue message, the tables, and the workers still
serving.
"""

from __future__ import annotations

import http.client
import http.server
import json
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests

from taskrail.client import TaskrailClient
from taskrail.local.accounts import user_client
from taskrail.local.stack import STATE_DIR, LocalStack, StackInfo, local_client
from tests.e2e.polling import wait_for
from tests.e2e.test_console import browser, chromium  # noqa: F401  (the shared chromium fixtures)
from tests.local_up import LOCAL_CLI, start_local_up

pytestmark = pytest.mark.e2e

ATTACKER_PAGE = b"""<!doctype html><html><body><h1>an unrelated page</h1><iframe name="sink"></iframe></body></html>"""

# Runs in the attacker's page: one attempt, reporting what the page could learn (never a thrown error).
FETCH = """async ([url, init]) => {
  try {
    const response = await fetch(url, init);
    let body = null;
    try { body = await response.text(); } catch (e) { body = null; }
    return {outcome: "answered", type: response.type, status: response.status, body};
  } catch (error) {
    return {outcome: "blocked", error: String(error)};
  }
}"""
FORM_POST = """([url, fields]) => new Promise((resolve) => {
  const form = document.createElement("form");
  form.method = "POST"; form.action = url; form.target = "sink";
  for (const [name, value] of Object.entries(fields)) {
    const input = document.createElement("input");
    input.name = name; input.value = value; form.appendChild(input);
  }
  document.body.appendChild(form);
  document.querySelector("iframe").addEventListener("load", () => resolve("loaded"), {once: true});
  form.submit();
})"""


class _AttackerHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(ATTACKER_PAGE)))
        self.end_headers()
        self.wfile.write(ATTACKER_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def attacker_origin() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AttackerHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def runtime_api_url(stack: LocalStack) -> str:
    # a live worker's Runtime API server (FunctionPool keeps them private; the test only needs an address)
    for function in stack.functions._functions.values():
        for worker in function.workers:
            if not worker.dead:
                return f"http://{worker.server.address}"
    raise AssertionError("no live Lambda worker")


def task_item(stack: LocalStack, task_id: str) -> dict[str, Any]:
    assert stack.info is not None
    key = {"taskId": {"S": task_id}}
    item = stack.clients("dynamodb").get_item(TableName=stack.info.tasks_table, Key=key, ConsistentRead=True)
    return dict(item.get("Item") or {})


def snapshot(stack: LocalStack, task_id: str, queue_url: str) -> dict[str, Any]:
    assert stack.info is not None
    dynamodb, sqs = stack.clients("dynamodb"), stack.clients("sqs")
    item = dynamodb.get_item(TableName=stack.info.tasks_table, Key={"taskId": {"S": task_id}}, ConsistentRead=True)
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return {
        "task": item.get("Item"),
        "queue": attributes,
        "tables": sorted(dynamodb.list_tables()["TableNames"]),
        "queues": sorted(sqs.list_queues().get("QueueUrls", [])),
    }


@pytest.mark.timeout(600)
def test_a_page_on_another_origin_can_neither_read_nor_change_the_stack(
    stack: LocalStack,
    alice: TaskrailClient,
    browser: Any,  # noqa: F811
    attacker_origin: str,
) -> None:
    assert stack.info is not None
    info = stack.info
    # Given a finished task and a queue holding a message
    task_id = alice.submit("text.stats", {"text": "keep me"})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"
    # ...whose outcome the outbox has delivered (it marks the item just after the status changed)
    wait_for(lambda: "outcomeDelivered" in task_item(stack, task_id), what="the outbox to deliver the outcome")
    sqs = stack.clients("sqs")
    queue_url = sqs.create_queue(QueueName="endpoint-security-canary")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="keep me too")
    before = snapshot(stack, task_id, queue_url)
    arn = stack.clients("dynamodb").get_item(TableName=info.tasks_table, Key={"taskId": {"S": task_id}})["Item"][
        "executionArn"
    ]["S"]

    aws = info.aws_endpoint_url
    api = info.api_url.rstrip("/")
    runtime = runtime_api_url(stack)
    console = info.console_url.rstrip("/")
    scan = json.dumps({"TableName": info.tasks_table})
    ddb = {"Content-Type": "application/x-amz-json-1.0"}
    get, post = {"method": "GET"}, {"method": "POST"}
    no_cors = {"mode": "no-cors"}
    target = {**ddb, "X-Amz-Target": "DynamoDB_20120810.Scan"}
    purge = {
        "body": f"Action=PurgeQueue&QueueUrl={quote(queue_url)}",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }
    submit = {
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"type": "text.stats", "params": {"text": "x"}}),
    }
    invocation = f"{runtime}/2018-06-01/runtime/invocation"
    execution = f"{console}/api/executions/{quote(arn, safe='')}"
    fetches: list[tuple[str, str, dict[str, Any]]] = [
        # the AWS endpoint: read the tasks (a preflighted JSON call and simple ones), write, reset
        ("aws read", aws, {**post, "headers": target, "body": scan}),
        ("aws read (simple)", f"{aws}/", get),
        ("aws read s3 (no-cors)", f"{aws}/{info.results_bucket}", {**get, **no_cors}),
        ("aws write (simple)", f"{aws}/", {**post, **no_cors, **purge}),
        ("aws reset", f"{aws}/moto-api/reset", {**post, **no_cors}),
        ("aws reset (cors)", f"{aws}/moto-api/reset", post),
        # the API
        ("api read", f"{api}/tasks/{task_id}", get),
        ("api write", f"{api}/tasks", {**post, **submit}),
        ("api write (simple)", f"{api}/tasks", {**post, **no_cors, "body": "{}"}),
        ("api delete", f"{api}/tasks/{task_id}", {"method": "DELETE"}),
        ("api reset", f"{api}/moto-api/reset", {**post, **no_cors}),
        # a Lambda Runtime API: taking an invocation, answering one, failing the worker's init
        ("runtime read", f"{invocation}/next", get),
        ("runtime read (no-cors)", f"{invocation}/next", {**get, **no_cors}),
        ("runtime write", f"{invocation}/forged/response", {**post, **no_cors, "body": "{}"}),
        ("runtime init error", f"{runtime}/2018-06-01/runtime/init/error", {**post, **no_cors, "body": "{}"}),
        ("runtime reset", f"{runtime}/moto-api/reset", {**post, **no_cors}),
        # the console: read executions, replay and stop without and with its action header
        ("console read", f"{console}/api/executions", get),
        ("console read task", execution, get),
        ("console replay (simple)", f"{console}/api/tasks/{task_id}/replay", {**post, **no_cors}),
        ("console stop (header)", f"{execution}/stop", {**post, "headers": {"X-Taskrail-Console": "1"}}),
        ("console reset", f"{console}/api/reset", {**post, **no_cors}),
    ]  # fmt: skip
    forms = [
        ("aws form reset", f"{aws}/moto-api/reset", {}),
        ("aws form purge", f"{aws}/", {"Action": "PurgeQueue", "QueueUrl": queue_url}),
        ("api form submit", f"{api}/tasks", {"type": "text.stats"}),
        ("runtime form", f"{runtime}/2018-06-01/runtime/init/error", {"errorMessage": "forged"}),
        ("console form replay", f"{console}/api/tasks/{task_id}/replay", {}),
        ("console form stop", f"{execution}/stop", {}),
    ]

    context = browser.new_context()
    answered: list[tuple[str, str, int]] = []
    context.on("response", lambda r: answered.append((r.request.method, r.url, r.status)))
    page = context.new_page()
    try:
        page.goto(attacker_origin)
        results = {name: page.evaluate(FETCH, [url, init]) for name, url, init in fetches}
        for name, url, fields in forms:
            results[name] = {"outcome": page.evaluate(FORM_POST, [url, fields])}
    finally:
        context.close()

    for name, result in results.items():
        print(f"{name:26} {json.dumps(result)[:200]}")
    for method, url, status in answered:
        print(f"   listener answered {method} {url[:100]} -> {status}")

    # Then the page learned nothing: every read is blocked or opaque, and nothing it was shown is data
    for name, _url, _init in fetches:
        result = results[name]
        readable = result["outcome"] == "answered" and result["type"] not in ("opaque",)
        assert not readable or result["status"] == 403, f"{name}: the page read an answer: {result}"
        if readable:
            assert task_id not in (result["body"] or ""), f"{name}: {result}"
    # and every request that reached the AWS endpoint, the API or the Runtime API was refused
    listeners = (aws, api, runtime)
    reached = [(m, u, s) for m, u, s in answered if u.startswith(listeners)]
    assert reached, "no attempt reached a listener: the test would prove nothing"
    assert all(status in (403,) for _m, _u, status in reached), reached
    # the console refused every action (the page got no CORS grant for its reads)
    console_posts = [(m, u, s) for m, u, s in answered if u.startswith(console) and m == "POST"]
    assert console_posts and all(status == 403 for _m, _u, status in console_posts), console_posts
    # And the stack's data is as it was, and its functions still serve
    assert snapshot(stack, task_id, queue_url) == before
    after = alice.submit("text.stats", {"text": "still working"})["taskId"]
    assert alice.wait([after], timeout=60)[after]["status"] == "SUCCEEDED"
    assert urlsplit(attacker_origin).port not in {urlsplit(u).port for u in (aws, api, runtime, console)}


# -- `taskrail local reset`: the one way to reset, over the stack's control socket ----------------------------


def test_local_reset_empties_the_stack_over_its_control_socket_and_http_cannot(tmp_path: Path) -> None:
    state = tmp_path / "state" / "local.json"
    cli = LOCAL_CLI
    with (tmp_path / "up.log").open("w") as log:
        up = start_local_up(state, log)
        try:
            # The state file and its folder are this OS user's only; so is the control socket's folder
            assert stat.S_IMODE(state.stat().st_mode) == 0o600
            assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
            info = StackInfo.load(state)
            assert stat.S_IMODE(Path(info.control_socket).parent.stat().st_mode) == 0o700
            assert stat.S_IMODE((STATE_DIR / "logs").stat().st_mode) == 0o700
            client = user_client(info, "alice")
            task_id = client.submit("text.stats", {"text": "before the reset"})["taskId"]
            assert client.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"
            dynamodb = local_client("dynamodb", info.aws_endpoint_url)
            key = {"taskId": {"S": task_id}}

            # When a caller tries moto's reset over HTTP, it is refused and nothing is wiped
            over_http = requests.post(f"{info.aws_endpoint_url}/moto-api/reset", timeout=10)
            print("POST /moto-api/reset ->", over_http.status_code, over_http.text)
            assert over_http.status_code == 403
            assert "Item" in dynamodb.get_item(TableName=info.tasks_table, Key=key)

            # When the user runs `taskrail local reset`
            reset = subprocess.run(
                [*cli, "reset", "--local-state", str(state)], capture_output=True, text=True, timeout=120, check=False
            )
            print("taskrail local reset ->", reset.returncode, reset.stdout, reset.stderr[-2000:])

            # Then the task is gone, and the stack serves new tasks end to end (pipes re-wired to the new stream)
            assert reset.returncode == 0, reset.stderr
            assert "Item" not in dynamodb.get_item(TableName=info.tasks_table, Key=key)
            after = client.submit("text.stats", {"text": "after the reset"})["taskId"]
            assert client.wait([after], timeout=60)[after]["status"] == "SUCCEEDED"
        finally:
            down = subprocess.run(
                [*cli, "down", "--local-state", str(state)], capture_output=True, timeout=60, check=False
            )
            if up.poll() is None:
                up.kill()
            assert down.returncode == 0


def test_every_listener_refuses_a_foreign_host_and_a_port_that_is_not_its_own(stack: LocalStack) -> None:
    assert stack.info is not None
    listeners = {
        "aws": (stack.info.aws_endpoint_url, "/", b"AccessDenied"),
        "api": (stack.info.api_url, "/v1/tasks", b"is not a loopback name"),
        "runtime": (runtime_api_url(stack), "/2018-06-01/runtime/invocation/next", b"is not a loopback name"),
        "console": (stack.info.console_url, "/api/workflow", b"is not a loopback name"),
    }
    for name, (url, path, expected) in listeners.items():
        parts = urlsplit(url)
        for host in ("evil.example", f"rebind.evil.example:{parts.port}", f"127.0.0.1:{parts.port + 1}"):
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            connection.putrequest("GET", path, skip_host=True)
            connection.putheader("Host", host)
            connection.endheaders()
            response = connection.getresponse()
            body = response.read()
            connection.close()
            print(f"{name:8} Host: {host:32} -> {response.status} {body[:160]!r}")
            assert response.status == 403, (name, host, body)
            assert expected in body, (name, host, body)
