"""Issue 13: GET /tasks/{taskId}/result on the local stack, through the API Gateway emulator and the result function
(both from the template), with IAM enforced: the owner gets a small result inline and a large one as a
time-limited link that downloads the document; another user gets 404 exactly as for GET /tasks/{taskId}; a task
that has no result yet gets 409 with the reason; `taskrail result` reads it with API access only."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from task_common.contract import TIMESTAMP_PATTERN, result_body_key
from taskrail.cli import app
from taskrail.client import TaskrailClient
from taskrail.local.stack import LocalStack
from tests.e2e.polling import wait_for

pytestmark = pytest.mark.e2e

RUNNER = CliRunner(env={"COLUMNS": "250"})
# diagnostic.echo's result is its params: past the claim-check threshold (200,000 bytes as StoreResult carries
# it), under the API's bound on stored params (256,000 bytes).
LARGE_TEXT = " ".join(f"w{i:06d}" + "x" * 40 for i in range(4_400))
LARGE_RESULT = {"echo": {"text": LARGE_TEXT}}


@pytest.fixture(scope="module")
def small(alice: TaskrailClient) -> dict[str, Any]:
    task_id = alice.submit("text.stats", {"text": "the cat sat on the mat"})["taskId"]
    return alice.wait([task_id], timeout=120)[task_id]


@pytest.fixture(scope="module")
def large(alice: TaskrailClient, stack: LocalStack) -> dict[str, Any]:
    task_id = alice.submit("diagnostic.echo", {"payload": {"text": LARGE_TEXT}})["taskId"]
    task = alice.wait([task_id], timeout=120)[task_id]
    assert stack.info is not None
    body_key = result_body_key(task_id)
    listed = stack.clients("s3").list_objects_v2(Bucket=stack.info.results_bucket, Prefix=body_key)
    assert [o["Key"] for o in listed.get("Contents", [])] == [body_key], "the result was not claim-checked"
    return task


def test_the_owner_gets_a_small_result_inline(alice: TaskrailClient, small: dict[str, Any]):
    assert small["status"] == "SUCCEEDED"

    status, answer = alice.request("GET", f"/tasks/{small['taskId']}/result")

    assert status == 200, answer
    assert set(answer) == {"taskId", "type", "result"}
    assert (answer["taskId"], answer["type"]) == (small["taskId"], "text.stats")
    assert answer["result"]["words"] == 6


def test_the_owner_gets_a_large_result_as_a_link_that_downloads_the_document(
    alice: TaskrailClient, large: dict[str, Any]
):
    status, answer = alice.request("GET", f"/tasks/{large['taskId']}/result")

    assert status == 200, answer
    assert set(answer) == {"taskId", "type", "resultUrl", "expiresAt", "resultBytes"}
    assert re.fullmatch(TIMESTAMP_PATTERN, answer["expiresAt"])
    lifetime = datetime.fromisoformat(answer["expiresAt"]) - datetime.now(UTC)
    assert 200 < lifetime.total_seconds() <= 300
    assert "X-Amz-Signature=" in answer["resultUrl"] and "X-Amz-Expires=300" in answer["resultUrl"]
    # the link needs no credentials: a plain GET downloads the result document
    downloaded = requests.get(answer["resultUrl"], timeout=30)
    assert downloaded.status_code == 200, downloaded.text[:500]
    assert len(downloaded.content) == answer["resultBytes"]
    assert downloaded.json() == LARGE_RESULT
    # and the client follows it
    assert alice.result(large["taskId"])["result"] == LARGE_RESULT


def test_a_tampered_link_is_refused(alice: TaskrailClient, large: dict[str, Any]):
    _, answer = alice.request("GET", f"/tasks/{large['taskId']}/result")
    url = answer["resultUrl"]

    other_key = url.replace(result_body_key(large["taskId"]), f"tasks/{large['taskId']}/input.json")
    longer = url.replace("X-Amz-Expires=300", "X-Amz-Expires=3000")

    for tampered in (other_key, longer):
        refused = requests.get(tampered, timeout=30)
        assert refused.status_code == 403, refused.text[:300]
        assert "<Code>SignatureDoesNotMatch</Code>" in refused.text


def test_another_user_gets_404_exactly_like_get_task(
    alice: TaskrailClient, bob: TaskrailClient, small: dict[str, Any], large: dict[str, Any]
):
    for task in (small, large):
        result_status, result_answer = bob.request("GET", f"/tasks/{task['taskId']}/result")
        task_status, task_answer = bob.request("GET", f"/tasks/{task['taskId']}")
        assert (result_status, result_answer) == (task_status, task_answer) == (404, {"message": "task not found"})
    missing_status, missing_answer = alice.request("GET", "/tasks/no-such-task/result")
    assert (missing_status, missing_answer) == (404, {"message": "task not found"})


def test_a_running_task_has_no_result_yet_409_with_the_reason(alice: TaskrailClient):
    task_id = alice.submit("diagnostic.sleep", {"seconds": 100, "steps": 100})["taskId"]
    wait_for(lambda: alice.get(task_id)["status"] == "RUNNING", timeout=60, what="the sleeping task runs")
    try:
        status, answer = alice.request("GET", f"/tasks/{task_id}/result")

        assert status == 409
        assert answer == {
            "message": f"task {task_id} is RUNNING: no result yet; GET /tasks/{task_id} until its status is SUCCEEDED"
        }
    finally:
        alice.cancel(task_id)
    status, answer = alice.request("GET", f"/tasks/{task_id}/result")
    assert (status, answer) == (409, {"message": f"task {task_id} is CANCELLED: it has no result"})


def test_the_cli_reads_results_through_the_api(
    stack: LocalStack, tmp_path: Path, small: dict[str, Any], large: dict[str, Any]
):
    state = tmp_path / "local.json"
    stack.write_state(state)

    def cli(*args: str) -> Any:
        return RUNNER.invoke(app, [*args, "--local-state", str(state)])

    inline = cli("result", small["taskId"], "--json")
    linked = cli("result", large["taskId"], "--json")
    piped = cli("result", large["taskId"])
    strangers = cli("result", small["taskId"], "--user", "bob")

    assert inline.exit_code == 0, inline.output
    assert json.loads(inline.stdout) == {
        "taskId": small["taskId"],
        "type": "text.stats",
        "result": json.loads(inline.stdout)["result"],
    }
    assert json.loads(inline.stdout)["result"]["words"] == 6
    assert linked.exit_code == 0, linked.output
    assert json.loads(linked.stdout)["result"] == LARGE_RESULT
    assert set(json.loads(linked.stdout)) == {"taskId", "type", "result", "resultUrl", "expiresAt", "resultBytes"}
    assert piped.exit_code == 0 and json.loads(piped.stdout) == LARGE_RESULT
    assert strangers.exit_code == 1 and "not found" in strangers.output
