"""Users and profiles in the template (issue 16 §1): the two tables, GET /me and PUT /me/profile, the access log's
subscription to UserSeenFunction (the record on any first request), the Profiles stream's pipe and function, and
their least-privilege grants."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.test_template import as_list, resources_of


def one(template: dict[str, Any], resource_type: str, name: str) -> tuple[str, dict[str, Any]]:
    [(logical_id, resource)] = [(k, v) for k, v in resources_of(template, resource_type).items() if name in k]
    return logical_id, resource


def statements_of_role(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources_of(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"])
    ]


def function_statements(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    _, function = one(template, "AWS::Lambda::Function", name)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        s for s in statements_of_role(template, role_id) if not as_list(s["Action"])[0].startswith(("xray", "logs"))
    ]


def test_both_tables_are_keyed_by_user_encrypted_recoverable_and_protected(template) -> None:
    _, tasks = one(template, "AWS::DynamoDB::Table", "TasksTable")
    [tasks_owner_type] = [
        a["AttributeType"] for a in tasks["Properties"]["AttributeDefinitions"] if a["AttributeName"] == "userId"
    ]
    assert tasks_owner_type == "S"
    for name in ("UsersTable", "ProfilesTable"):
        _, table = one(template, "AWS::DynamoDB::Table", name)
        props = table["Properties"]
        print(name, {k: props.get(k) for k in ("KeySchema", "SSESpecification", "StreamSpecification")})
        assert props["KeySchema"] == [{"AttributeName": "userId", "KeyType": "HASH"}]
        # the same owner identity as a task's, of the same type: an IAM unique id is a string (owner.vtl)
        assert props["AttributeDefinitions"] == [{"AttributeName": "userId", "AttributeType": tasks_owner_type}]
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"
    assert "StreamSpecification" not in one(template, "AWS::DynamoDB::Table", "UsersTable")[1]["Properties"]
    profiles = one(template, "AWS::DynamoDB::Table", "ProfilesTable")[1]["Properties"]
    assert profiles["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def _method(template: dict[str, Any], http_method: str, path_part: str) -> dict[str, Any]:
    resources = resources_of(template, "AWS::ApiGateway::Resource")
    [resource_id] = [k for k, r in resources.items() if r["Properties"]["PathPart"] == path_part]
    [method] = [
        m["Properties"]
        for m in resources_of(template, "AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == http_method and m["Properties"]["ResourceId"] == {"Ref": resource_id}
    ]
    return method


def test_get_me_is_the_me_function_given_the_owner_of_owner_vtl(template) -> None:
    method = _method(template, "GET", "me")
    assert method["AuthorizationType"] == "AWS_IAM"
    assert "MeFunction" in json.dumps(method["Integration"]["Uri"])
    request = json.dumps(method["Integration"]["RequestTemplates"])
    assert "$context.identity.user" in request  # owner.vtl, included
    assert "$owner" in request and "$ownerArn" in request


def test_put_me_profile_is_a_direct_update_of_the_callers_own_profile(template) -> None:
    method = _method(template, "PUT", "profile")
    assert method["AuthorizationType"] == "AWS_IAM"
    assert "RequestValidatorId" in method and "RequestModels" in method
    uri = method["Integration"]["Uri"]["Fn::Join"][1][-1]
    assert uri.endswith("dynamodb:action/UpdateItem")
    request = json.dumps(method["Integration"]["RequestTemplates"])
    assert "UsersProfilesTable" in request  # the Profiles table's name, from the template
    assert "startsWith($own)" in request  # the avatar's own-prefix check
    assert '\\"Key\\": {\\"userId\\": {\\"S\\": \\"$util.escapeJavaScript($owner)' in request
    assert {str(r["StatusCode"]) for r in method["MethodResponses"]} == {"200", "400", "503"}


def test_the_profile_model_bounds_every_field_and_refuses_others(template) -> None:
    _, model = one(template, "AWS::ApiGateway::Model", "ProfileUpdateModel")
    schema = model["Properties"]["Schema"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["fullName"]["maxLength"] == 200
    assert schema["properties"]["avatar"]["pattern"] == "^users/[^/]+/[^/].*$"
    preferences = schema["properties"]["preferences"]
    assert preferences["additionalProperties"] is False
    assert set(preferences["properties"]["notifications"]["properties"]) == {"email", "onFailed", "onSucceeded"}


def test_the_api_role_may_update_only_the_profiles_table_for_put(template) -> None:
    _, role = one(template, "AWS::IAM::Role", "ApiIntegrationRole")
    role_id = next(k for k, v in resources_of(template, "AWS::IAM::Role").items() if v is role)
    profile_grants = [
        s for s in statements_of_role(template, role_id) if "UsersProfilesTable" in json.dumps(s["Resource"])
    ]
    assert [as_list(s["Action"]) for s in profile_grants] == [["dynamodb:UpdateItem"]]
    assert not [s for s in statements_of_role(template, role_id) if "UsersUsersTable" in json.dumps(s["Resource"])]


def test_the_profile_function_may_change_subscriptions_of_the_notifications_topic_only(template) -> None:
    statements = function_statements(template, "ProfileChangesFunction")
    sns = [s for s in statements if as_list(s["Action"])[0].startswith("sns:")]
    print(sns)
    assert [sorted(as_list(s["Action"])) for s in sns] == [
        ["sns:SetSubscriptionAttributes", "sns:Subscribe", "sns:Unsubscribe"]
    ]
    assert sns[0]["Resource"] == {
        "Ref": next(k for k in resources_of(template, "AWS::SNS::Topic") if "Notifications" in k)
    }
    dynamodb = [s for s in statements if as_list(s["Action"])[0].startswith("dynamodb:")]
    assert [json.dumps(s["Resource"]) for s in dynamodb] == [
        json.dumps({"Fn::GetAtt": [one(template, "AWS::DynamoDB::Table", "UsersTable")[0], "Arn"]})
    ]


def test_the_me_function_reads_and_updates_the_two_tables_only(template) -> None:
    [statement] = function_statements(template, "MeFunction")
    assert sorted(as_list(statement["Action"])) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    tables = {json.dumps(r) for r in as_list(statement["Resource"])}
    assert tables == {
        json.dumps({"Fn::GetAtt": [one(template, "AWS::DynamoDB::Table", name)[0], "Arn"]})
        for name in ("UsersTable", "ProfilesTable")
    }


def test_the_profile_pipe_reads_the_profiles_stream_into_the_function_with_a_dlq(template) -> None:
    _, pipe = one(template, "AWS::Pipes::Pipe", "ProfileChangesPipe")
    props = pipe["Properties"]
    assert props["Source"] == {"Fn::GetAtt": [one(template, "AWS::DynamoDB::Table", "ProfilesTable")[0], "StreamArn"]}
    # the function's live alias (docs/DEPLOY.md)
    assert props["Target"] == {"Ref": one(template, "AWS::Lambda::Alias", "ProfileChangesFunctionLive")[0]}
    stream = props["SourceParameters"]["DynamoDBStreamParameters"]
    assert stream["BatchSize"] == 1 and "DeadLetterConfig" in stream
    [pattern] = props["SourceParameters"]["FilterCriteria"]["Filters"]
    assert json.loads(pattern["Pattern"]) == {"eventName": ["INSERT", "MODIFY", "REMOVE"]}


def test_the_access_log_subscription_sends_authenticated_lines_to_the_user_seen_alias(template) -> None:
    """Every route signs its caller in (issue 16 §1): the stage's access log group, filtered to the lines of
    authenticated, non-refused requests, delivered to UserSeenFunction's live alias (docs/DEPLOY.md)."""
    _, subscription = one(template, "AWS::Logs::SubscriptionFilter", "UserSeenSubscription")
    props = subscription["Properties"]
    access_logs, _ = one(template, "AWS::Logs::LogGroup", "ApiAccessLogs")
    stage = next(iter(resources_of(template, "AWS::ApiGateway::Stage").values()))["Properties"]
    print(props)
    assert stage["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": [access_logs, "Arn"]}
    assert props["LogGroupName"] == {"Ref": access_logs}
    assert props["DestinationArn"] == {"Ref": one(template, "AWS::Lambda::Alias", "UserSeenFunctionLive")[0]}
    assert props["FilterPattern"] == '{ ($.user != "-") && ($.status != "403") }'
    # the fields the pattern and the function read are in every line
    line = json.loads(stage["AccessLogSetting"]["Format"])
    assert (line["user"], line["userArn"], line["status"]) == (
        "$context.identity.user",
        "$context.identity.userArn",
        "$context.status",
    )


def test_only_cloudwatch_logs_may_invoke_the_user_seen_alias_and_only_for_the_access_log(template) -> None:
    permission_id, permission = one(template, "AWS::Lambda::Permission", "UserSeenSubscription")
    props = permission["Properties"]
    print(props)
    assert props == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"Ref": one(template, "AWS::Lambda::Alias", "UserSeenFunctionLive")[0]},
        "Principal": "logs.amazonaws.com",
        "SourceArn": {"Fn::GetAtt": [one(template, "AWS::Logs::LogGroup", "ApiAccessLogs")[0], "Arn"]},
    }
    _, subscription = one(template, "AWS::Logs::SubscriptionFilter", "UserSeenSubscription")
    assert permission_id in subscription["DependsOn"]  # CloudWatch Logs checks it when the filter is created


def test_the_user_seen_function_reads_and_updates_the_two_tables_only(template) -> None:
    [statement] = function_statements(template, "UserSeenFunction")
    assert sorted(as_list(statement["Action"])) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert {json.dumps(r) for r in as_list(statement["Resource"])} == {
        json.dumps({"Fn::GetAtt": [one(template, "AWS::DynamoDB::Table", name)[0], "Arn"]})
        for name in ("UsersTable", "ProfilesTable")
    }
