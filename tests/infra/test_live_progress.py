"""The live-progress resources as the template declares them (infra/constructs/live.py): IAM on $connect, the push
function's reach (this API's stage's connections only), one DynamoDB action per route's role, the push pipe's
filter, the Connections table's TTL, encryption and owner index, the stage's logs and throttling."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.constructs.api import TEMPLATES_DIR as API_TEMPLATES_DIR
from infra.constructs.live import STAGE_NAME
from task_common.contract import CONNECTION_MAX_SECONDS, CONNECTIONS_OWNER_INDEX, CONNECTIONS_OWNER_INDEX_ENV, Output
from taskrail.local.pipes import matches
from taskrail.local.websocket import CALLER_CONNECT_STATEMENT

Resources = dict[str, dict[str, Any]]


def of_type(template: dict[str, Any], resource_type: str) -> Resources:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == resource_type}


def one(template: dict[str, Any], resource_type: str, name: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, r) for k, r in of_type(template, resource_type).items() if k.startswith(f"LiveProgress{name}")]
    return found


def statements_of_role(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def api_id(template: dict[str, Any]) -> str:
    logical_id, api = one(template, "AWS::ApiGatewayV2::Api", "WebSocketApi")
    assert api["Properties"]["ProtocolType"] == "WEBSOCKET"
    assert api["Properties"]["RouteSelectionExpression"] == "$request.body.action"
    return logical_id


@pytest.fixture(scope="module")
def table_id(template: dict[str, Any]) -> str:
    return one(template, "AWS::DynamoDB::Table", "ConnectionsTable")[0]


def routes(template: dict[str, Any], api_id: str) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["RouteKey"]: r["Properties"]
        for r in of_type(template, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["ApiId"] == {"Ref": api_id}
    }


def test_connect_is_iam_authorized_and_the_api_has_exactly_the_three_routes(template, api_id):
    by_key = routes(template, api_id)
    print({key: route["AuthorizationType"] for key, route in by_key.items()})
    assert set(by_key) == {"$connect", "$disconnect", "subscribe"}
    assert by_key["$connect"]["AuthorizationType"] == "AWS_IAM"
    # Only $connect can carry an authorizer on a WebSocket API; the others run on the connection it admitted
    assert {by_key[k]["AuthorizationType"] for k in ("$disconnect", "subscribe")} == {"NONE"}


def test_the_push_function_may_post_to_the_connections_of_this_apis_stage_only(template, api_id):
    (function_id,) = [k for k in of_type(template, "AWS::Lambda::Function") if k.startswith("FunctionsPushProgress")]
    role_id = template["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = statements_of_role(template, role_id)
    execute_api = [s for s in statements if any(a.startswith("execute-api:") for a in as_list(s["Action"]))]
    print(json.dumps(execute_api))

    # One statement: ManageConnections on arn:...:execute-api:<region>:<account>:<this API>/live/POST/@connections/*
    (statement,) = execute_api
    assert statement["Action"] == "execute-api:ManageConnections" and statement["Effect"] == "Allow"
    separator, parts = statement["Resource"]["Fn::Join"]
    assert separator == ""
    assert parts[0] == "arn:" and {"Ref": "AWS::Partition"} in parts and {"Ref": "AWS::Region"} in parts
    assert {"Ref": api_id} in parts
    assert parts[-1] == f"/{STAGE_NAME}/POST/@connections/*"
    # ...and nothing else with a wildcard action or on another API
    assert all("*" not in action for s in statements for action in as_list(s["Action"]))
    stage = one(template, "AWS::ApiGatewayV2::Stage", "Stage")[1]["Properties"]
    assert stage["StageName"] == STAGE_NAME and stage["ApiId"] == {"Ref": api_id}


def test_the_push_function_reads_the_owner_index_and_deletes_rows_of_the_connections_table(template, table_id):
    (function_id,) = [k for k in of_type(template, "AWS::Lambda::Function") if k.startswith("FunctionsPushProgress")]
    function = template["Resources"][function_id]["Properties"]
    environment = function["Environment"]["Variables"]
    assert environment["CONNECTIONS_TABLE_NAME"] == {"Ref": table_id}
    assert environment[CONNECTIONS_OWNER_INDEX_ENV] == CONNECTIONS_OWNER_INDEX
    assert environment["WEBSOCKET_CALLBACK_URL"]["Fn::Join"][1][0] == "https://"
    dynamodb = {
        action: s["Resource"]
        for s in statements_of_role(template, function["Role"]["Fn::GetAtt"][0])
        for action in as_list(s["Action"])
        if action.startswith("dynamodb:")
    }
    assert dynamodb == {
        "dynamodb:Query": {"Fn::Join": ["", [{"Fn::GetAtt": [table_id, "Arn"]}, f"/index/{CONNECTIONS_OWNER_INDEX}"]]},
        "dynamodb:DeleteItem": {"Fn::GetAtt": [table_id, "Arn"]},
    }


@pytest.mark.parametrize(
    ("route_key", "action"), [("$connect", "PutItem"), ("$disconnect", "DeleteItem"), ("subscribe", "UpdateItem")]
)
def test_each_routes_integration_runs_as_a_role_with_its_one_dynamodb_action_on_the_connections_table(
    template, api_id, table_id, route_key, action
):
    route = routes(template, api_id)[route_key]
    integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
    integration = template["Resources"][integration_id]["Properties"]
    assert integration["IntegrationType"] == "AWS"
    assert integration["IntegrationUri"]["Fn::Join"][1][-1] == f":dynamodb:action/{action}"
    role_id = integration["CredentialsArn"]["Fn::GetAtt"][0]

    statements = statements_of_role(template, role_id)
    print(route_key, [(s["Action"], s["Resource"]) for s in statements])
    assert statements == [
        {"Action": f"dynamodb:{action}", "Effect": "Allow", "Resource": {"Fn::GetAtt": [table_id, "Arn"]}}
    ]
    trust = template["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "apigateway.amazonaws.com"}]
    assert all(not template["Resources"][role_id]["Properties"].get(k) for k in ("ManagedPolicyArns", "Policies"))


def test_the_connect_template_stores_the_owner_by_the_rest_apis_own_rule(template, api_id):
    route = routes(template, api_id)["$connect"]
    integration = template["Resources"][route["Target"]["Fn::Join"][1][1]["Ref"]]["Properties"]
    rendered = json.dumps(integration["RequestTemplates"])
    owner_rule = (API_TEMPLATES_DIR / "owner.vtl").read_text().strip().splitlines()[-3]  # the assumed-role match
    assert json.dumps(owner_rule)[1:-1] in rendered
    assert f"+ {CONNECTION_MAX_SECONDS})" in rendered and "%%" not in rendered


def test_subscribe_answers_the_client_with_the_stored_subscription(template, api_id):
    route = routes(template, api_id)["subscribe"]
    assert route["RouteResponseSelectionExpression"] == "$default"
    integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
    responses = {
        r["Properties"]["IntegrationResponseKey"]: r["Properties"]["ResponseTemplates"]["$default"]
        for r in of_type(template, "AWS::ApiGatewayV2::IntegrationResponse").values()
        if r["Properties"]["IntegrationId"] == {"Ref": integration_id}
    }
    assert set(responses) == {"$default", "/4\\d{2}/", "/5\\d{2}/"}
    assert '"type": "subscribed"' in responses["$default"] and "$.Attributes.taskId.S" in responses["$default"]
    assert '"type": "error"' in responses["/4\\d{2}/"]


def test_the_connections_table_expires_rows_is_encrypted_and_indexed_by_owner(template, table_id):
    table = template["Resources"][table_id]["Properties"]
    print(table["TimeToLiveSpecification"], table["SSESpecification"], table["GlobalSecondaryIndexes"][0]["KeySchema"])
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["KeySchema"] == [{"AttributeName": "connectionId", "KeyType": "HASH"}]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == CONNECTIONS_OWNER_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": "ownerId", "KeyType": "HASH"},
        {"AttributeName": "connectionId", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"NonKeyAttributes": ["taskId"], "ProjectionType": "INCLUDE"}


def test_the_stage_logs_each_request_and_is_throttled(template, api_id):
    stage = one(template, "AWS::ApiGatewayV2::Stage", "Stage")[1]["Properties"]
    assert stage["AutoDeploy"] is True
    assert "connectionId" in json.loads(stage["AccessLogSettings"]["Format"])
    assert stage["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][1] == "Arn"
    settings = stage["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] >= settings["ThrottlingRateLimit"]


def test_the_websocket_url_output_is_the_stages_wss_url(template, api_id):
    value = template["Outputs"][Output.WEBSOCKET_URL.value]["Value"]["Fn::Join"][1]
    assert value[0] == "wss://" and value[1] == {"Ref": api_id} and value[-1] == f"/{STAGE_NAME}"


# -- the push pipe's filter ------------------------------------------------------------------------------------


def stream_record(event_name: str, status: str | None, **image: str) -> dict[str, Any]:
    new_image = {"taskId": {"S": "t-1"}, **({"status": {"S": status}} if status else {})}
    new_image |= {name: {"N" if name == "progress" else "S": value} for name, value in image.items()}
    return {"eventName": event_name, "dynamodb": {"Keys": {"taskId": {"S": "t-1"}}, "NewImage": new_image}}


FILTER_ROWS = [
    # (what the record is, the record, pushed)
    ("the submit (INSERT)", stream_record("INSERT", "QUEUED", progress="0"), False),
    ("a REMOVE", stream_record("REMOVE", None), False),
    ("the claim (status QUEUED to RUNNING)", stream_record("MODIFY", "RUNNING", progress="0"), True),
    ("a progress write", stream_record("MODIFY", "RUNNING", progress="40"), True),
    ("a cancel", stream_record("MODIFY", "CANCELLED", progress="40"), True),
    ("a replay's requeue", stream_record("MODIFY", "QUEUED", progress="0"), True),
    *(
        (f"the terminal write ({s})", stream_record("MODIFY", s, progress="100", outcomePending=s), True)
        for s in ("SUCCEEDED", "REJECTED", "FAILED")
    ),
    # Changed neither progress nor status, on a running task: passes, by design (docs/DECISIONS.md; the image has no
    # old values to compare): the message repeats the state, as the first progress write's 0 after the claim's 0 does
    (
        "a running task's write that changes neither progress nor status",
        stream_record("MODIFY", "RUNNING", progress="0", updatedAt="2026-12-02T07:47:41.500Z"),
        True,
    ),
    # Changed neither progress nor status: the outbox's mark of a delivered outcome, the reconciler's tidy-up
    *(
        (f"the outbox's mark ({s})", stream_record("MODIFY", s, progress="100", outcomeDelivered=s), False)
        for s in ("SUCCEEDED", "REJECTED", "FAILED")
    ),
]


def push_filters(template: dict[str, Any]) -> list[dict[str, Any]]:
    pipe = one(template, "AWS::Pipes::Pipe", "PushProgressPipe")[1]["Properties"]
    return [json.loads(f["Pattern"]) for f in pipe["SourceParameters"]["FilterCriteria"]["Filters"]]


@pytest.mark.parametrize(("what", "stream_record", "pushed"), FILTER_ROWS, ids=[row[0] for row in FILTER_ROWS])
def test_the_push_pipe_passes_changes_of_progress_or_status_only(template, what, stream_record, pushed):
    assert any(matches(pattern, stream_record) for pattern in push_filters(template)) is pushed, what


def test_the_push_pipe_reads_in_stream_order_from_now_on_and_targets_the_push_function(template):
    pipe = one(template, "AWS::Pipes::Pipe", "PushProgressPipe")[1]["Properties"]
    stream = pipe["SourceParameters"]["DynamoDBStreamParameters"]
    assert stream["ParallelizationFactor"] == 1 and stream["StartingPosition"] == "LATEST"
    assert stream["MaximumRecordAgeInSeconds"] == 60
    assert pipe["Target"]["Ref"].startswith("FunctionsPushProgressFunctionLive")  # its alias (docs/DEPLOY.md)
    assert pipe["TargetParameters"]["LambdaFunctionParameters"]["InvocationType"] == "REQUEST_RESPONSE"


# -- the README's caller policy ----------------------------------------------------------------------------------

README = Path(__file__).parents[2] / "README.md"


def readme_caller_policy() -> dict[str, Any]:
    """The JSON policy of README's "Granting a caller access" paragraph."""
    text = README.read_text()
    section = text[text.index("**Granting a caller access.**") :]
    block = re.search(r"```json\n(.*?)\n```", section, re.DOTALL)
    assert block is not None, "README's caller policy is not a ```json block"
    return json.loads(block.group(1))


def test_the_readmes_caller_policy_may_connect_to_every_iam_authorized_websocket_route(template, api_id):
    # A caller with README's policy only must be able to open the live channel on AWS (the local WebSocket API does
    # not evaluate the caller's execute-api:Invoke, so only this test can catch a policy without it)
    invoked = {
        resource
        for statement in readme_caller_policy()["Statement"]
        if statement["Effect"] == "Allow" and "execute-api:Invoke" in as_list(statement["Action"])
        for resource in as_list(statement["Resource"])
    }
    iam_routes = [key for key, route in routes(template, api_id).items() if route["AuthorizationType"] == "AWS_IAM"]
    assert iam_routes == ["$connect"]
    for route_key in iam_routes:
        assert f"arn:aws:execute-api:REGION:ACCOUNT:WS_API_ID/{STAGE_NAME}/{route_key}" in invoked
    assert f"`{Output.WEBSOCKET_URL.value}` output" in README.read_text()


def test_the_local_callers_hold_readmes_websocket_statement():
    # The local $connect evaluates each caller's Invoke against the statement README documents (taskrail/local/
    # websocket.py CALLER_CONNECT_STATEMENT): the same one, so what connects locally connects with README's policy
    assert dict(CALLER_CONNECT_STATEMENT) in readme_caller_policy()["Statement"]
