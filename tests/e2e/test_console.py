"""The local web console: in a real browser (Debian's chromium driven by Playwright) against the session's local
stack, and its JSON API and outcome classification without one."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from taskrail.client import TaskrailClient
from taskrail.console import ACTION_HEADER, classify_states, layout_workflow, taken_transitions
from taskrail.local.stack import LocalStack
from taskrail.operator import Operator
from tests.e2e.browser import browser, chromium, console_url, page  # noqa: F401 -- fixtures (page, and what it uses)
from tests.e2e.polling import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
DOCS_SCREENSHOT = ROOT / "docs" / "console.png"
# `make screenshot` sets this: only then does the browser test rewrite the README's picture of the console.
UPDATE_SCREENSHOT = os.environ.get("TASKRAIL_UPDATE_SCREENSHOT") == "1"
FIX_MARKER = "diagnostics/poison-fixed"
MAIN_PATH = [
    "ClaimTask",
    "ValidateParameters",
    "ProcessTask",
    "StoreResult",
    "MarkSucceeded",
    "TaskSucceeded",
]


def asl_definition() -> dict[str, Any]:
    return json.loads((ROOT / "asl" / "task_lifecycle.asl.json").read_text())


@pytest.fixture
def fix_marker_absent(stack: LocalStack) -> Iterator[Any]:
    """Poison tasks fail until the marker exists: other tests put it there, so it is removed before and after."""
    assert stack.info is not None
    s3, bucket = stack.clients("s3"), stack.info.results_bucket
    s3.delete_object(Bucket=bucket, Key=FIX_MARKER)
    yield lambda: s3.put_object(Bucket=bucket, Key=FIX_MARKER, Body=b"fixed")
    s3.delete_object(Bucket=bucket, Key=FIX_MARKER)


def save_screenshot(opened: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    opened.screenshot(path=str(path), full_page=True)
    return path


@pytest.mark.timeout(600)
def test_failed_poison_task_is_shown_on_its_path_and_replayed_from_the_console(
    stack: LocalStack,
    alice: TaskrailClient,
    alice_operator: Operator,
    page: Any,  # noqa: F811 -- the fixture
    fix_marker_absent: Any,
):
    from playwright.sync_api import expect

    # Given a poison task that failed at ProcessTask, its failure recorded with a DLQ message
    task_id = alice.submit("diagnostic.poison", {})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "FAILED"
    wait_for(lambda: any(m["taskId"] == task_id for m in alice_operator.dlq_messages(max_messages=1000)), 30,
             "the outbox's DLQ message")  # fmt: skip

    # When the operator opens the console and the task's failed execution
    page.goto(console_url(stack))
    failed_row = page.locator(f'[data-testid="execution-row"][data-task-id="{task_id}"][data-status="FAILED"]')
    expect(failed_row).to_have_count(1, timeout=15_000)
    failed_arn = failed_row.get_attribute("data-arn")
    failed_row.click()

    # Then the graph shows where it failed (the execution ended there: Redrive resumes it) and what never ran
    def state(name: str) -> Any:
        return page.locator(f'[data-testid="state-node"][data-state="{name}"]')

    expect(page.get_by_test_id("execution-status")).to_have_text("FAILED")
    expect(state("ProcessTask")).to_have_attribute("data-outcome", "failed")
    for name in ("ClaimTask", "ValidateParameters"):
        expect(state(name)).to_have_attribute("data-outcome", "succeeded")
    for name in ("StoreResult", "TaskSucceeded", "MarkRejected"):
        expect(state(name)).to_have_attribute("data-outcome", "not_reached")
    expect(page.locator('[data-testid="event-row"][data-type="ExecutionFailed"]')).to_have_count(1)
    expect(page.get_by_test_id("redrive-button")).to_be_enabled()
    state("ProcessTask").click()
    expect(page.get_by_test_id("state-detail-name")).to_have_text("ProcessTask")
    expect(page.get_by_test_id("state-detail")).to_contain_text("PermanentTaskError")
    expect(page.get_by_test_id("state-input")).to_contain_text(task_id)
    save_screenshot(page, "console-failed.png")

    # When the cause is fixed and the operator clicks Replay
    fix_marker_absent()
    page.get_by_test_id("replay-button").click()

    # Then a new execution of the same task succeeds, shown live in the list and on the graph
    replayed = page.locator(f'[data-testid="execution-row"][data-task-id="{task_id}"][data-status="SUCCEEDED"]')
    expect(replayed).to_have_count(1, timeout=60_000)
    assert replayed.get_attribute("data-arn") != failed_arn
    assert replayed.get_attribute("data-name") == f"{task_id}-r1"
    expect(replayed).to_have_class("execution-row selected")
    expect(page.get_by_test_id("execution-status")).to_have_text("SUCCEEDED")
    for name in MAIN_PATH:
        expect(state(name)).to_have_attribute("data-outcome", "succeeded")
    expect(page.get_by_test_id("replay-button")).to_be_disabled()
    expect(page.get_by_test_id("redrive-button")).to_have_count(0)  # not offered for a SUCCEEDED execution
    assert alice.get(task_id)["status"] == "SUCCEEDED"
    screenshot = save_screenshot(page, "console.png")
    if UPDATE_SCREENSHOT:
        shutil.copyfile(screenshot, DOCS_SCREENSHOT)


# -- the API and the outcome classification, without a browser ----------------------------------------------


def test_flaky_task_shows_process_task_retried_then_succeeded(stack: LocalStack, alice: TaskrailClient):
    # Given a task that fails transiently twice, then succeeds
    task_id = alice.submit("diagnostic.flaky", {"failures": 2})["taskId"]
    task = alice.wait([task_id], timeout=60)[task_id]
    assert task["status"] == "SUCCEEDED"
    sfn = stack.clients("stepfunctions")
    # The task reads SUCCEEDED at MarkSucceeded; the notification states run after it: wait for the execution.
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=task["executionArn"])["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.05)
    events = sfn.get_execution_history(executionArn=task["executionArn"], maxResults=1000)["events"]

    # When its real history is classified
    states = classify_states(asl_definition(), events, "SUCCEEDED")

    # Then ProcessTask was retried (three attempts, two transient failures) and the main path succeeded
    process = states["ProcessTask"]
    assert process["outcome"] == "retried"
    assert (process["attempts"], process["retries"]) == (3, 2)
    assert [f["error"] for f in process["failures"]] == ["TransientTaskError", "TransientTaskError"]
    assert process["output"]["processing"]["output"]["result"] == {"failuresBeforeSuccess": 2}
    assert {name: states[name]["outcome"] for name in MAIN_PATH if name != "ProcessTask"} == {
        name: "succeeded" for name in MAIN_PATH if name != "ProcessTask"
    }
    assert states["MarkRejected"]["outcome"] == states["TaskWasCancelled"]["outcome"] == "not_reached"
    assert taken_transitions(events) == [list(pair) for pair in itertools.pairwise(MAIN_PATH)]

    # And the console's API serves the same classification
    response = requests.get(f"{console_url(stack)}/api/executions/{quote(task['executionArn'], safe='')}", timeout=10)
    assert response.status_code == 200
    detail = response.json()
    assert detail["execution"]["taskId"] == task_id
    assert detail["states"]["ProcessTask"]["outcome"] == "retried"
    assert detail["task"]["type"] == "diagnostic.flaky"
    assert len(detail["events"]) == len(events)


def test_unfinished_state_is_running_and_unexited_state_of_an_ended_execution_failed():
    events = [
        {"id": 1, "type": "ExecutionStarted", "timestamp": "t1", "executionStartedEventDetails": {"input": "[]"}},
        {"id": 2, "type": "TaskStateEntered", "timestamp": "t2", "stateEnteredEventDetails": {"name": "ClaimTask"}},
        {"id": 3, "type": "TaskScheduled", "timestamp": "t3", "taskScheduledEventDetails": {}},
    ]
    definition = asl_definition()

    assert classify_states(definition, events, "RUNNING")["ClaimTask"]["outcome"] == "running"
    assert classify_states(definition, events, "ABORTED")["ClaimTask"]["outcome"] == "failed"
    assert classify_states(definition, events, "RUNNING")["ValidateParameters"]["outcome"] == "not_reached"


def test_workflow_layout_puts_the_main_path_in_one_column_and_branches_beside_it(stack: LocalStack):
    response = requests.get(f"{console_url(stack)}/api/workflow", timeout=10)
    assert response.status_code == 200
    layout = response.json()["layout"]
    nodes = {n["name"]: n for n in layout["nodes"]}

    definition = asl_definition()["States"]
    assert set(nodes) == set(definition)
    assert [n["name"] for n in sorted(layout["nodes"], key=lambda n: n["row"]) if n["column"] == 0] == MAIN_PATH
    # branches that end in a Fail state to the right (the lifecycle has none since issue 19: failures end where
    # they failed); those ending quietly in a Succeed state (a rejected task, a cancelled one) to the left
    assert nodes["MarkRejected"]["column"] < 0 and nodes["TaskWasCancelled"]["column"] < 0
    assert all(nodes[n]["column"] > 0 for n, state in definition.items() if state["Type"] == "Fail")
    assert nodes["MarkRejected"]["row"] > nodes["ValidateParameters"]["row"], "below every state that can reach it"
    boxes = {(n["x"], n["y"]) for n in layout["nodes"]}
    assert len(boxes) == len(nodes), "no two states share a box"
    edges = {(e["source"], e["target"]): e for e in layout["edges"]}
    assert edges[("ProcessTask", "MarkRejected")]["kind"] == "catch"
    assert edges[("ProcessTask", "StoreResult")]["kind"] == "next"
    assert all(len(e["points"]) >= 2 for e in layout["edges"])
    assert layout == layout_workflow(asl_definition())


def test_executions_are_listed_with_their_task_and_filtered_by_status(stack: LocalStack, alice: TaskrailClient):
    task_id = alice.submit("text.stats", {"text": "listed in the console"})["taskId"]
    arn = alice.wait([task_id], timeout=60)[task_id]["executionArn"]
    sfn = stack.clients("stepfunctions")
    wait_for(lambda: sfn.describe_execution(executionArn=arn)["status"] == "SUCCEEDED", 30, "the execution to end")

    listed = requests.get(f"{console_url(stack)}/api/executions", params={"status": "SUCCEEDED"}, timeout=10)
    failed = requests.get(f"{console_url(stack)}/api/executions", params={"status": "FAILED"}, timeout=10)

    assert listed.status_code == failed.status_code == 200
    rows = [r for r in listed.json()["executions"] if r["taskId"] == task_id]
    assert len(rows) == 1
    assert rows[0]["status"] == rows[0]["shownStatus"] == "SUCCEEDED" and rows[0]["taskType"] == "text.stats"
    assert rows[0]["startDate"] <= rows[0]["stopDate"]
    assert all(r["shownStatus"] == "FAILED" for r in failed.json()["executions"])
    assert {r["status"] for r in failed.json()["executions"]} <= {"FAILED", "TIMED_OUT", "ABORTED"}
    assert task_id not in {r["taskId"] for r in failed.json()["executions"]}


@pytest.mark.timeout(300)
def test_rejected_and_cancelled_tasks_show_as_what_they_are_and_are_filtered_by_it(
    stack: LocalStack,
    alice: TaskrailClient,
    page: Any,  # noqa: F811 -- the fixture
):
    from playwright.sync_api import expect

    # Given a task rejected for its parameters (its execution SUCCEEDED quietly in TaskRejected), a cancelled one
    # and a succeeded one
    rejected = alice.submit("text.stats", {"text": "x", "top": 0})["taskId"]  # top must be >= 1
    cancelled = alice.submit("diagnostic.sleep", {"seconds": 5, "steps": 1})["taskId"]
    succeeded = alice.submit("text.stats", {"text": "fine"})["taskId"]
    wait_for(lambda: alice.get(cancelled).get("executionArn"), 30, "the sleeping task's execution to start")
    alice.cancel(cancelled)
    ended = alice.wait([rejected, cancelled, succeeded], timeout=60)
    assert [ended[t]["status"] for t in (rejected, cancelled, succeeded)] == ["REJECTED", "CANCELLED", "SUCCEEDED"]
    sfn = stack.clients("stepfunctions")
    for task in ended.values():
        wait_for(lambda t=task: sfn.describe_execution(executionArn=t["executionArn"])["status"] != "RUNNING", 30,
                 "the execution to end")  # fmt: skip

    # When the operator opens the console
    page.goto(console_url(stack))

    def row(task_id: str) -> Any:
        return page.locator(f'[data-testid="execution-row"][data-task-id="{task_id}"]')

    # Then each row reads as its task ended: REJECTED and CANCELLED, neither in FAILED's colour
    expect(row(rejected)).to_have_attribute("data-shown-status", "REJECTED", timeout=15_000)
    expect(row(cancelled)).to_have_attribute("data-shown-status", "CANCELLED")
    expect(row(succeeded)).to_have_attribute("data-shown-status", "SUCCEEDED")
    expect(row(rejected).get_by_test_id("row-status")).to_have_text("REJECTED")
    expect(row(cancelled).get_by_test_id("row-status")).to_have_text("CANCELLED")

    def colour(locator: Any) -> str:
        return str(locator.evaluate("node => getComputedStyle(node).backgroundColor"))

    failed_colour = page.evaluate(
        """() => { const b = document.createElement("span"); b.className = "badge FAILED";
                   document.body.append(b); const c = getComputedStyle(b).backgroundColor; b.remove(); return c; }"""
    )
    shown = {colour(row(t).get_by_test_id("row-status")) for t in (rejected, cancelled, succeeded)}
    assert failed_colour not in shown and len(shown) == 3, (failed_colour, shown)

    # And the filter offers Rejected and Cancelled, each listing only those
    options = page.get_by_test_id("status-filter").locator("option").all_text_contents()
    assert {"Rejected", "Cancelled", "Failed", "Succeeded", "Running"} <= set(options)
    for status, listed, hidden in (("REJECTED", rejected, cancelled), ("CANCELLED", cancelled, rejected)):
        page.get_by_test_id("status-filter").select_option(status)
        expect(row(listed)).to_have_count(1, timeout=10_000)
        expect(row(hidden)).to_have_count(0)
        expect(row(succeeded)).to_have_count(0)
        shown_statuses = page.locator('[data-testid="execution-row"]').evaluate_all(
            "rows => rows.map(r => r.dataset.shownStatus)"
        )
        assert set(shown_statuses) == {status}


def test_cancel_stops_a_running_execution_and_cancels_its_task(stack: LocalStack, alice: TaskrailClient):
    task_id = alice.submit("diagnostic.sleep", {"seconds": 5, "steps": 1})["taskId"]
    arn = wait_for(lambda: alice.get(task_id).get("executionArn"), what="the task's execution to start")
    stop_url = f"{console_url(stack)}/api/executions/{quote(arn, safe='')}/stop"

    stopped = requests.post(stop_url, headers={ACTION_HEADER: "1"}, timeout=10)
    again = requests.post(stop_url, headers={ACTION_HEADER: "1"}, timeout=10)

    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {"executionArn": arn, "stopped": True, "taskId": task_id, "taskStatus": "CANCELLED"}
    assert alice.get(task_id)["status"] == "CANCELLED"
    assert again.status_code == 409
    assert "not RUNNING" in again.json()["message"]


def test_a_console_cancel_of_another_users_task_goes_through_the_api_as_its_owner(
    stack: LocalStack, bob: TaskrailClient
):
    # Given bob's task running (the console is nobody's: it cancels as the task's owner)
    task_id = bob.submit("diagnostic.sleep", {"seconds": 5, "steps": 1})["taskId"]
    arn = wait_for(lambda: bob.get(task_id).get("executionArn"), what="the task's execution to start")

    # When the console is asked to stop its execution
    stopped = requests.post(
        f"{console_url(stack)}/api/executions/{quote(arn, safe='')}/stop", headers={ACTION_HEADER: "1"}, timeout=40
    )

    # Then the task was cancelled through the API as bob (storage first), and the console answered once the
    # execution had ended (tests/unit/test_console_cancel.py: on this path the console itself writes nothing to the
    # table and stops nothing)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json() == {"executionArn": arn, "stopped": True, "taskId": task_id, "taskStatus": "CANCELLED"}
    task = bob.get(task_id)
    assert task["status"] == "CANCELLED" and task["cancelledAt"]
    # Stopped by the pipe (ABORTED), or ended by the workflow itself when its progress update saw the cancel
    # (TaskWasCancelled, a Succeed state): the same race as a cancel through the API
    ended = stack.clients("stepfunctions").describe_execution(executionArn=arn)["status"]
    assert ended in ("ABORTED", "SUCCEEDED")


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "message"),
    [
        ("GET", "/api/executions?status=BOGUS", {}, 400, "status must be one of"),
        ("GET", "/api/executions?limit=zero", {}, 400, "limit"),
        ("GET", "/api/executions/not-an-arn", {}, 400, ""),
        ("GET", "/api/nothing", {}, 404, "no such endpoint"),
        ("GET", "/static/../console.py", {}, 404, ""),
        ("POST", "/api/tasks/some-task/replay", {}, 403, ACTION_HEADER),
        ("POST", "/api/executions/some-arn/redrive", {}, 403, ACTION_HEADER),
        ("POST", "/api/executions/not-an-arn/redrive", {ACTION_HEADER: "1"}, 400, ""),
        ("POST", f"/api/tasks/{uuid.uuid4()}/replay", {ACTION_HEADER: "1"}, 404, "no task"),
        ("GET", "/api/workflow", {"Host": "rebound.example:80"}, 403, "is not a loopback name"),
        ("GET", "/api/workflow", {"Host": "127.0.0.1:1"}, 403, "is not a loopback name"),  # another port
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(
    stack: LocalStack, method: str, path: str, headers: dict[str, str], status: int, message: str
):
    response = requests.request(method, f"{console_url(stack)}{path}", headers=headers, timeout=10)

    assert response.status_code == status, response.text
    assert message in response.json()["message"]


def test_unknown_execution_is_a_404(stack: LocalStack):
    assert stack.info is not None
    arn = stack.info.state_machine_arn.replace(":stateMachine:", ":execution:") + ":no-such-execution"

    response = requests.get(f"{console_url(stack)}/api/executions/{quote(arn, safe='')}", timeout=10)

    assert response.status_code == 404
    assert response.json()["message"]


def test_replay_of_a_task_that_did_not_fail_is_refused(stack: LocalStack, alice: TaskrailClient):
    task_id = alice.submit("text.stats", {"text": "fine"})["taskId"]
    assert alice.wait([task_id], timeout=60)[task_id]["status"] == "SUCCEEDED"

    response = requests.post(
        f"{console_url(stack)}/api/tasks/{task_id}/replay", headers={ACTION_HEADER: "1"}, timeout=10
    )

    assert response.status_code == 409
    assert "only a FAILED task" in response.json()["message"]
