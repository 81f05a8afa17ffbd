"""GET /tasks pages through every task (issue 9, defect 9): a user with 110 tasks sees 110, filtered or not.

DynamoDB's Query applies ``Limit`` to the index entries it reads, before the FilterExpression: a filtered page
may hold fewer than ``limit`` matches and still not be the last, so the API carries ``next`` whenever DynamoDB
stopped early (LastEvaluatedKey). Over HTTP through the local API Gateway (real VTL) to moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from taskrail.cli import app
from taskrail.client import ApiError, TaskrailClient
from tests.local.local_api import LocalApi, local_api

TASKS = 110
CANCELLED = 40
RUNNER = CliRunner()


@pytest.fixture(scope="module")
def api(template: dict[str, Any], template_path: Path) -> Iterator[LocalApi]:
    with local_api(template, template_path) as running:
        yield running


@pytest.fixture(scope="module")
def owner(api: LocalApi) -> TaskrailClient:
    return api.client("batch")


@pytest.fixture(scope="module")
def tasks(owner: TaskrailClient) -> dict[str, set[str]]:
    """110 tasks of one owner (the local stack here runs no workflow: they stay QUEUED), 40 of them cancelled."""
    ids = [owner.submit("text.stats", {"n": n})["taskId"] for n in range(TASKS)]
    cancelled = set(ids[::2][:CANCELLED])
    assert len(cancelled) == CANCELLED
    for task_id in cancelled:
        owner.cancel(task_id)
    return {"all": set(ids), "CANCELLED": cancelled, "QUEUED": set(ids) - cancelled}


@pytest.fixture
def taskrail(api: LocalApi, tmp_path: Path) -> Any:
    state = api.state_file(tmp_path)

    def invoke(*args: str) -> Any:
        return RUNNER.invoke(app, [*args, "--user", "batch", "--local-state", str(state)])

    return invoke


def test_the_api_caps_a_page_at_100_and_says_there_is_more(owner: TaskrailClient, tasks):
    page = owner.list_page(limit=100)

    assert len(page.tasks) == 100
    assert page.next is not None


def test_a_user_with_110_tasks_sees_all_of_them_with_all(owner: TaskrailClient, tasks):
    listed = owner.list_tasks(all_pages=True)

    assert len(listed) == TASKS
    assert {task["taskId"] for task in listed} == tasks["all"]
    assert [t["createdAt"] for t in listed] == sorted((t["createdAt"] for t in listed), reverse=True)


@pytest.mark.parametrize("status", ["QUEUED", "CANCELLED"])
@pytest.mark.parametrize("limit", [7, 25, 100])
def test_a_status_filtered_list_pages_through_every_match(owner: TaskrailClient, tasks, status: str, limit: int):
    # When the owner follows next from the first page of a filtered list
    seen: list[str] = []
    page = owner.list_page(status, limit)
    pages = 1
    while True:
        # Then each page holds at most limit tasks, all of the status
        assert len(page.tasks) <= limit
        assert {task["status"] for task in page.tasks} <= {status}
        seen += [task["taskId"] for task in page.tasks]
        if page.next is None:
            break
        page = owner.list_page(status, limit, page.next)
        pages += 1

    # And together they are every task of the status, each once
    assert sorted(seen) == sorted(tasks[status])
    assert pages >= TASKS // limit  # Limit counts the entries read before the filter
    assert {t["taskId"] for t in owner.list_tasks(status, all_pages=True)} == tasks[status]


def test_find_tasks_collects_up_to_limit_matches_across_pages(owner: TaskrailClient, tasks):
    first = owner.find_page("CANCELLED", limit=30)
    rest = owner.find_page("CANCELLED", limit=None, next_token=first.next)

    assert len(first.tasks) == 30 and first.next is not None
    assert {t["taskId"] for t in first.tasks} | {t["taskId"] for t in rest.tasks} == tasks["CANCELLED"]
    assert len(rest.tasks) == CANCELLED - 30 and rest.next is None


def test_the_cli_lists_everything_with_all_and_continues_with_next(taskrail, tasks):
    everything = json.loads(taskrail("list", "--all", "--json").stdout)
    cancelled = json.loads(taskrail("list", "--status", "CANCELLED", "--all", "--json").stdout)
    first = json.loads(taskrail("list", "--status", "QUEUED", "--limit", "50", "--json").stdout)
    rest = json.loads(
        taskrail("list", "--status", "QUEUED", "--limit", "100", "--next", first["next"], "--json").stdout
    )

    assert everything["count"] == TASKS and everything["next"] is None
    assert {t["taskId"] for t in cancelled["tasks"]} == tasks["CANCELLED"]
    assert first["count"] == 50 and first["next"]
    assert {t["taskId"] for t in first["tasks"] + rest["tasks"]} == tasks["QUEUED"]
    assert rest["count"] == len(tasks["QUEUED"]) - 50 and rest["next"] is None


def test_the_cli_says_how_to_get_the_next_page(taskrail, tasks):
    result = taskrail("list", "--limit", "5")

    assert result.exit_code == 0, result.output
    assert "taskrail list --next " in result.output


TAMPERED = [
    '"}',
    '","Limit":1000,"x":"',
    ".",
    "1700000000000.",
    "-1.x",
    "1.a b",
    "1.x\n",
    "1." + "x" * 1501,
    "$context.identity.user",
]


@pytest.mark.parametrize("suffix", TAMPERED)
def test_a_tampered_next_is_a_400_saying_so_never_a_5xx(api: LocalApi, owner: TaskrailClient, tasks, suffix: str):
    token = owner.list_page(limit=5).next
    assert token

    for tampered in (token + suffix, suffix):
        status, body = owner.request("GET", f"/tasks?next={_quote(tampered)}")

        assert status == 400, (tampered, body)
        assert body["message"].startswith("invalid next token")
    assert api.gateway.internal_errors == []


def test_the_cli_reports_a_tampered_next(taskrail, tasks):
    result = taskrail("list", "--next", '1."}')

    assert result.exit_code == 1
    assert "invalid next token" in result.output


def test_the_client_raises_on_a_tampered_next(owner: TaskrailClient, tasks):
    with pytest.raises(ApiError) as raised:
        owner.list_page(next_token="x")

    assert raised.value.status == 400


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
