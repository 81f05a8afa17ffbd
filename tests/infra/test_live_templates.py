"""The live-progress mapping templates (infra/constructs/live_templates/) rendered as API Gateway does (the local
stack's renderer, taskrail/local/vtl.py), with the WebSocket $context: what each route writes, for hostile input too."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.live import load_template
from task_common.contract import ALL_TASKS, CONNECTION_MAX_SECONDS
from taskrail.local.vtl import ApiRequest, render_request, render_response

TABLE = "taskrail-Connections"
ROLE_ID = "AROAEXAMPLEROLEID"
CONNECTED_AT_MS = 1_764_626_400_123
HOSTILE = ['q"uote', "back\\slash", "it's", "é ✓ 🙂", "</script>", "\n\t", "$context.connectionId", "#set($x = 1)"]


def strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def ws_request(body: str = "", **context: Any) -> ApiRequest:
    return ApiRequest(
        method="POST",
        resource_path="",
        path="",
        body=body,
        stage="live",
        identity={
            "user": f"{ROLE_ID}:botocore-session-1764626400",
            "userArn": "arn:aws:sts::123456789012:assumed-role/alice/botocore-session-1764626400",
        },
        extra_context={"connectionId": "Lx1aBcD=", "connectedAt": CONNECTED_AT_MS, "eventType": "CONNECT", **context},
    )


def test_connect_stores_the_connection_with_the_stable_owner_and_its_two_hour_expiry():
    item = strict(render_request(load_template("connect.request.vtl", TABLE), ws_request()))
    print(item)
    assert item["TableName"] == TABLE
    assert item["Item"] == {
        "connectionId": {"S": "Lx1aBcD="},
        "ownerId": {"S": ROLE_ID},  # the role's id, not the session: the REST API's owner.vtl
        "connectedAt": {"N": str(CONNECTED_AT_MS)},
        "expiresAt": {"N": str(CONNECTED_AT_MS // 1000 + CONNECTION_MAX_SECONDS)},
    }
    assert item["ConditionExpression"] == "attribute_not_exists(connectionId)"


def test_disconnect_deletes_the_connections_row():
    request = ws_request(eventType="DISCONNECT")
    assert strict(render_request(load_template("disconnect.request.vtl", TABLE), request)) == {
        "TableName": TABLE,
        "Key": {"connectionId": {"S": "Lx1aBcD="}},
    }


@pytest.mark.parametrize("task_id", ["t-1", *HOSTILE])
def test_subscribe_stores_the_task_id_as_given_and_answers_it_back(task_id: str):
    request = ws_request(json.dumps({"action": "subscribe", "taskId": task_id}), eventType="MESSAGE")
    update = strict(render_request(load_template("subscribe.request.vtl", TABLE), request))
    assert update["Key"] == {"connectionId": {"S": "Lx1aBcD="}}
    assert update["ExpressionAttributeValues"] == {":taskId": {"S": task_id}}
    assert update["ConditionExpression"] == "attribute_exists(connectionId)"

    answer = render_response(
        load_template("subscribe.response.vtl", TABLE), request, json.dumps({"Attributes": {"taskId": {"S": task_id}}})
    )
    assert strict(answer.body) == {"type": "subscribed", "taskId": task_id}


def test_subscribe_without_a_task_id_subscribes_to_all_the_callers_tasks():
    request = ws_request(json.dumps({"action": "subscribe"}), eventType="MESSAGE")
    update = strict(render_request(load_template("subscribe.request.vtl", TABLE), request))
    assert update["ExpressionAttributeValues"] == {":taskId": {"S": ALL_TASKS}}


def test_a_refused_subscribe_tells_the_client():
    request = ws_request(json.dumps({"action": "subscribe", "taskId": "t-1"}), eventType="MESSAGE")
    refusal = render_response(
        load_template("subscribe.error.vtl", TABLE), request, json.dumps({"message": "The conditional request failed"})
    )
    assert strict(refusal.body)["type"] == "error"
