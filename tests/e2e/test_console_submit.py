"""The console's "submit a task" form: the registry's types with their params schemas, a submission through the
API as the form's user (alice), and the API's refusal shown as it is."""

from __future__ import annotations

import json
from typing import Any

import requests

from task_types import known_types
from taskrail.client import TaskrailClient
from taskrail.console import ACTION_HEADER
from taskrail.local.stack import LocalStack
from tests.e2e.browser import browser, chromium, console_url, page  # noqa: F401 -- fixtures (page, and what it uses)


def test_the_form_lists_the_types_and_submits_one_that_runs(
    stack: LocalStack,
    alice: TaskrailClient,
    page: Any,  # noqa: F811 -- the fixture
):
    from playwright.sync_api import expect

    # When the operator opens the console
    page.goto(console_url(stack))
    form = page.get_by_test_id("submit-form")
    expect(form).to_be_visible(timeout=15_000)

    # Then the form offers every registered type, each with its params schema
    options = page.get_by_test_id("submit-type").locator("option").all_text_contents()
    assert options == known_types()
    page.get_by_test_id("submit-type").select_option("text.stats")
    expect(page.get_by_test_id("submit-summary")).to_contain_text("word and character counts")
    schema = json.loads(page.get_by_test_id("submit-schema").text_content() or "{}")
    assert set(schema["properties"]) == {"text", "source", "top"}

    # When a text.stats task is submitted from it
    page.get_by_test_id("submit-params").fill(json.dumps({"text": "the console submits this text"}))
    page.get_by_test_id("submit-button").click()

    # Then the toast names the accepted task, which is alice's and runs to SUCCEEDED
    toast = page.get_by_test_id("toast")
    expect(toast).to_contain_text("Submitted text.stats: task ", timeout=15_000)
    task_id = (toast.text_content() or "").split("task ", 1)[1].split(" ", 1)[0]
    print("submitted from the console:", task_id)
    ended = alice.wait([task_id], timeout=60)[task_id]
    assert ended["status"] == "SUCCEEDED", ended
    assert ended["params"] == {"text": "the console submits this text"}

    # And its execution appears in the list
    row = page.locator(f'[data-testid="execution-row"][data-task-id="{task_id}"]')
    expect(row).to_have_count(1, timeout=15_000)


def test_the_apis_refusal_is_shown_with_its_message(stack: LocalStack):
    url = console_url(stack) + "/api/tasks"
    headers = {ACTION_HEADER: "1", "Content-Type": "application/json"}

    unknown = requests.post(url, json={"type": "image.resize", "params": {}}, headers=headers, timeout=30)
    malformed = requests.post(url, data=b'{"type": 1}', headers=headers, timeout=30)
    unsigned = requests.post(url, json={"type": "text.stats", "params": {"text": "x"}}, timeout=30)

    assert unknown.status_code == 400, unknown.text
    assert 'instance value ("image.resize") not found in enum' in unknown.json()["message"]
    assert malformed.status_code == 400 and "the body must be" in malformed.json()["message"]
    assert unsigned.status_code == 403  # an action needs the console's header, as replay and cancel do


def test_types_are_listed_with_their_schemas(stack: LocalStack):
    listed = requests.get(console_url(stack) + "/api/types", timeout=30).json()

    assert listed["canSubmit"] is True
    assert [t["type"] for t in listed["types"]] == known_types()
    sleep = next(t for t in listed["types"] if t["type"] == "diagnostic.sleep")
    assert sleep["paramsSchema"]["required"] == ["seconds"]
