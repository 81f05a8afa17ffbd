"""The API's mapping templates take their statuses from the task contract (``%%STATUS_…%%`` and the cancel
condition's ``%%CANCELLABLE_…%%`` placeholders, rendered by ``infra/constructs/api.py``), not from literals."""

from __future__ import annotations

import json
import re

import pytest

from infra.constructs.api import TEMPLATES_DIR, load_template
from task_common.contract import ALL_STATUSES, CANCELLABLE_STATUSES
from taskrail.local.vtl import ApiRequest, render_request, render_response

STATUS_WORD = re.compile(rf"\b({'|'.join(ALL_STATUSES)})\b")
USER = "AIDACANCELLER"


def _code_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.lstrip().startswith("##")]  # ## is a VTL comment


@pytest.mark.parametrize("name", sorted(p.name for p in TEMPLATES_DIR.glob("*.vtl")))
def test_no_mapping_template_spells_out_a_status(name: str):
    # Given a template file as written (its comments aside)
    literals = [line for line in _code_lines((TEMPLATES_DIR / name).read_text()) if STATUS_WORD.search(line)]
    # Then every status in it is a placeholder the contract renders
    assert literals == [], f"{name}: write %%STATUS_<NAME>%% (infra/constructs/api.py VALUES), not the status"


def _cancel_request() -> ApiRequest:
    return ApiRequest(
        method="DELETE",
        resource_path="/tasks/{taskId}",
        path="/tasks/t-1",
        path_params={"taskId": "t-1"},
        identity={"user": USER},
    )


def test_the_cancel_condition_is_the_contracts_cancellable_statuses():
    # When the cancel route's request template is rendered as the stack deploys it
    update = json.loads(render_request(load_template("cancel_task.request.vtl", "Tasks"), _cancel_request()))

    # Then the statuses its condition admits are CANCELLABLE_STATUSES, and it writes CANCELLED
    (references,) = re.findall(r"#status IN \(([^)]*)\)", update["ConditionExpression"])
    values = update["ExpressionAttributeValues"]
    assert {values[ref.strip()]["S"] for ref in references.split(",")} == CANCELLABLE_STATUSES
    assert values[":cancelled"] == {"S": "CANCELLED"}


def test_the_refused_cancel_names_the_cancellable_statuses():
    # Given a task of the caller's that has already ended
    old = {"Item": {"taskId": {"S": "t-1"}, "userId": {"S": USER}, "status": {"S": "SUCCEEDED"}}}
    body = {"__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", **old}

    rendered = render_response(load_template("cancel_task.error.vtl", "Tasks"), _cancel_request(), json.dumps(body))

    # Then the 409 says which statuses a cancel accepts, in the contract's order
    assert rendered.status_override == 409
    message = json.loads(rendered.body)["message"]
    assert message == "task is already SUCCEEDED; only QUEUED or RUNNING tasks can be cancelled"
    assert set(re.findall(r"only (.*) tasks", message)[0].split(" or ")) == CANCELLABLE_STATUSES
