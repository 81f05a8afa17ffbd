"""Template assertions that fail on a regression of the platform's guarantees."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.synth import asl_drift

DATA_RESOURCE_TYPES = {"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::SNS::Topic"}
# Actions that have no resource-level permissions in IAM, so "*" is the only valid resource.
RESOURCE_STAR_ALLOWED = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "dynamodb:ListStreams",
}


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def policy_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    statements = []
    for logical_id, policy in resources_of(template, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            statements.append((logical_id, statement))
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_iam_statement_allows_every_action(template):
    for logical_id, statement in policy_statements(template):
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{logical_id} allows {action}"


def test_resource_star_only_for_actions_without_resource_level_permissions(template):
    for logical_id, statement in policy_statements(template):
        if "*" in as_list(statement["Resource"]):
            actions = set(as_list(statement["Action"]))
            assert actions <= RESOURCE_STAR_ALLOWED, f"{logical_id} grants {actions - RESOURCE_STAR_ALLOWED} on *"


def test_no_statement_names_a_data_resource_with_a_bare_wildcard(template):
    data_ids = {k for k, v in template["Resources"].items() if v["Type"] in DATA_RESOURCE_TYPES}
    for logical_id, statement in policy_statements(template):
        text = json.dumps(statement["Resource"])
        for data_id in data_ids:
            # "<bucket arn>/*" would grant every object; we grant per prefix (tasks/, users/, diagnostics/).
            assert f'["{data_id}", "Arn"]}}, "/*"' not in text, f"{logical_id} grants all of {data_id}"


def tasks_table(template: dict[str, Any]) -> dict[str, Any]:
    tables = resources_of(template, "AWS::DynamoDB::Table")
    return next(
        t["Properties"] for t in tables.values() if t["Properties"]["KeySchema"][0]["AttributeName"] == "taskId"
    )


def test_tasks_table_has_stream_gsis_pitr_and_encryption(template):
    tasks = tasks_table(template)
    assert tasks["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    indexes = {i["IndexName"]: [k["AttributeName"] for k in i["KeySchema"]] for i in tasks["GlobalSecondaryIndexes"]}
    assert indexes == {
        "userId-createdAt-v2": ["userId", "createdAt"],
        "pendingShard-createdAt": ["pendingShard", "createdAt"],  # sparse, sharded: the reconciler's live tasks
        "outcomePending-createdAt": ["outcomePending", "createdAt"],  # sparse: the outbox's undelivered outcomes
    }
    assert tasks["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert tasks["SSESpecification"]["SSEEnabled"] is True


def test_indexes_sort_on_a_number_created_at(template):
    # The API writes createdAt as $context.requestTimeEpoch (a number); DynamoDB rejects a write whose index key has
    # another type than the index declares, and the reconciler queries createdAt < :cutoff numerically.
    tasks = tasks_table(template)
    types = {d["AttributeName"]: d["AttributeType"] for d in tasks["AttributeDefinitions"]}
    key_types = {
        index["IndexName"]: {k["KeyType"]: (k["AttributeName"], types[k["AttributeName"]]) for k in index["KeySchema"]}
        for index in tasks["GlobalSecondaryIndexes"]
    }
    assert key_types == {
        "userId-createdAt-v2": {"HASH": ("userId", "S"), "RANGE": ("createdAt", "N")},
        "pendingShard-createdAt": {"HASH": ("pendingShard", "S"), "RANGE": ("createdAt", "N")},
        "outcomePending-createdAt": {"HASH": ("outcomePending", "S"), "RANGE": ("createdAt", "N")},
    }


def test_results_bucket_is_versioned(template):
    # "One result per task" is checked by counting object versions of tasks/{id}/result.json; without versioning an
    # overwrite leaves one version and a duplicate write would go unseen.
    results = next(
        b["Properties"]
        for b in resources_of(template, "AWS::S3::Bucket").values()
        if any(r.get("Prefix") == "tasks/" for r in b["Properties"].get("LifecycleConfiguration", {}).get("Rules", []))
    )
    assert results.get("VersioningConfiguration") == {"Status": "Enabled"}


def test_every_bucket_is_encrypted_private_and_tls_only(template):
    buckets = resources_of(template, "AWS::S3::Bucket")
    policies = resources_of(template, "AWS::S3::BucketPolicy")
    assert len(buckets) == 2
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"], logical_id
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        policy = next(p for p in policies.values() if p["Properties"]["Bucket"] == {"Ref": logical_id})
        denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies), logical_id


def test_task_objects_move_to_ia_after_30_days_and_glacier_instant_retrieval_after_90(template):
    # Instant Retrieval, not Flexible Retrieval: `taskrail result` must still read them (see test_storage.py).
    buckets = resources_of(template, "AWS::S3::Bucket")
    rules = [r for b in buckets.values() for r in b["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])]
    tasks_rule = next(r for r in rules if r.get("Prefix") == "tasks/")
    assert tasks_rule["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": 30},
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 90},
    ]


def test_queues_and_topics_are_encrypted(template):
    for logical_id, queue in resources_of(template, "AWS::SQS::Queue").items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, logical_id
    for logical_id, topic in resources_of(template, "AWS::SNS::Topic").items():
        assert "KmsMasterKeyId" in topic["Properties"], logical_id


def test_every_api_method_is_iam_authorised_and_validated(template):
    methods = resources_of(template, "AWS::ApiGateway::Method")
    assert {m["Properties"]["HttpMethod"] for m in methods.values()} == {"POST", "GET", "DELETE", "PUT"}
    assert len(methods) == 7
    for logical_id, method in methods.items():
        props = method["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM", logical_id
        assert "RequestValidatorId" in props, logical_id
        assert props["Integration"]["Type"] == "AWS", f"{logical_id}: a service integration, never AWS_PROXY"
    # two functions behind the API, custom integrations: the result (docs/DECISIONS.md "The result endpoint"), and
    # the caller's user record and profile (docs/DECISIONS.md "Users and profiles")
    uris = {logical_id: json.dumps(m["Properties"]["Integration"]["Uri"]) for logical_id, m in methods.items()}
    functions = [logical_id for logical_id, uri in uris.items() if ":lambda:path/2015-03-31/functions/" in uri]
    assert len(functions) == 2
    assert {"ReadResultFunction", "MeFunction"} == {
        name for name in ("ReadResultFunction", "MeFunction") for f in functions if name in uris[f]
    }
    assert all("dynamodb:action/" in uri for logical_id, uri in uris.items() if logical_id not in functions)


def test_submission_is_a_conditional_update_item_with_a_schema(template):
    methods = resources_of(template, "AWS::ApiGateway::Method")
    post = next(m["Properties"] for m in methods.values() if m["Properties"]["HttpMethod"] == "POST")
    assert post["Integration"]["Uri"]["Fn::Join"][1][-1].endswith("dynamodb:action/UpdateItem")
    assert "RequestModels" in post
    request_template = json.dumps(post["Integration"]["RequestTemplates"])
    assert (
        "attribute_not_exists(taskId) OR (userId = :owner AND #type = :type AND params = :params)" in request_template
    )
    assert "422" in {str(r["StatusCode"]) for r in post["MethodResponses"]}


def test_stage_is_throttled_logged_and_traced(template):
    stage = next(iter(resources_of(template, "AWS::ApiGateway::Stage").values()))["Properties"]
    assert stage["TracingEnabled"] is True
    assert "AccessLogSetting" in stage
    settings = stage["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0


def test_state_machine_is_standard_logged_traced_and_time_limited(template, asl_definition):
    machine = next(iter(resources_of(template, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["LoggingConfiguration"]["Level"] == "ERROR"  # its history is in the console (docs/COST.md)
    assert machine["TracingConfiguration"]["Enabled"] is True
    assert asl_definition["TimeoutSeconds"] > 0


def test_pipe_starts_workflows_for_inserts_fire_and_forget_with_a_dlq(template):
    pipes = resources_of(template, "AWS::Pipes::Pipe")
    start = next(p["Properties"] for p in pipes.values() if "StepFunctionStateMachineParameters" in json.dumps(p))
    source = start["SourceParameters"]
    assert json.loads(source["FilterCriteria"]["Filters"][0]["Pattern"]) == {"eventName": ["INSERT"]}
    assert source["DynamoDBStreamParameters"]["BatchSize"] == 1
    assert "Arn" in json.dumps(source["DynamoDBStreamParameters"]["DeadLetterConfig"])
    target = start["TargetParameters"]
    assert target["StepFunctionStateMachineParameters"]["InvocationType"] == "FIRE_AND_FORGET"


def statements_of_role(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The statements of the role's inline policies and of every AWS::IAM::Policy attached to it."""
    inline = template["Resources"][role]["Properties"].get("Policies", [])
    attached = [
        p["Properties"]
        for p in resources_of(template, "AWS::IAM::Policy").values()
        if {"Ref": role} in p["Properties"].get("Roles", [])
    ]
    return [s for p in inline + attached for s in p["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]


def test_pipe_roles_may_send_to_their_dead_letter_queue(template):
    pipes = resources_of(template, "AWS::Pipes::Pipe")
    assert pipes
    for logical_id, pipe in pipes.items():
        if logical_id.startswith("LiveProgressPushProgressPipe"):
            continue  # no DLQ: a progress message it drops needs no replay (infra/constructs/live.py)
        role = pipe["Properties"]["RoleArn"]["Fn::GetAtt"][0]
        dlq_arn = pipe["Properties"]["SourceParameters"]["DynamoDBStreamParameters"]["DeadLetterConfig"]["Arn"]
        granted = [s for s in statements_of_role(template, role) if "sqs:SendMessage" in as_list(s["Action"])]
        assert any(dlq_arn in as_list(s["Resource"]) for s in granted), f"{logical_id}: {role} cannot send to its DLQ"


def test_outcome_rule_retries_and_keeps_what_it_cannot_deliver(template):
    rules = resources_of(template, "AWS::Events::Rule")
    topics = set(resources_of(template, "AWS::SNS::Topic"))
    queues = set(resources_of(template, "AWS::SQS::Queue"))
    targets = [t for r in rules.values() for t in r["Properties"]["Targets"] if t["Arn"].get("Ref") in topics]
    assert len(targets) == 1, targets
    target = targets[0]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 185
    assert target["RetryPolicy"].get("MaximumEventAgeInSeconds", 86400) == 86400
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] in queues


DEAD_LETTER_KEYS = {"DeadLetterConfig", "RedrivePolicy", "OnFailure"}


def _referenced_ids(value: Any) -> set[str]:
    if isinstance(value, dict):
        if "Ref" in value:
            return {value["Ref"]}
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        return {i for v in value.values() for i in _referenced_ids(v)}
    if isinstance(value, list):
        return {i for v in value for i in _referenced_ids(v)}
    return set()


def _dead_letter_references(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = {i for k, v in value.items() if k in DEAD_LETTER_KEYS for i in _referenced_ids(v)}
        return found | {i for k, v in value.items() if k not in DEAD_LETTER_KEYS for i in _dead_letter_references(v)}
    if isinstance(value, list):
        return {i for v in value for i in _dead_letter_references(v)}
    return set()


def _queues_workflows_send_to(template: dict[str, Any]) -> set[str]:
    """Queues a state machine's sqs:sendMessage states name (the task DLQ, where Catch sends failures)."""
    found: set[str] = set()
    for machine in resources_of(template, "AWS::StepFunctions::StateMachine").values():
        parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
        text = "".join(p if isinstance(p, str) else f"${{{next(iter(_referenced_ids(p)))}}}" for p in parts)

        def walk(states: dict[str, Any]) -> None:
            for state in states.values():
                if state.get("Resource", "").endswith(":states:::sqs:sendMessage"):
                    found.add(state["Parameters"]["QueueUrl"].removeprefix("${").removesuffix("}"))
                for branch in state.get("Branches", []):
                    walk(branch["States"])
                if "ItemProcessor" in state:
                    walk(state["ItemProcessor"]["States"])

        walk(json.loads(text)["States"])
    return found


def _queues_functions_dead_letter_to(template: dict[str, Any]) -> set[str]:
    """Queues a function sends failed tasks to (its DEAD_LETTER_QUEUE_URL)."""
    return {
        ref
        for function in resources_of(template, "AWS::Lambda::Function").values()
        for name, value in function["Properties"].get("Environment", {}).get("Variables", {}).items()
        if name == "DEAD_LETTER_QUEUE_URL"
        for ref in _referenced_ids(value)
    }


def test_every_dead_letter_queue_has_an_alarm_when_not_empty(template):
    queues = set(resources_of(template, "AWS::SQS::Queue"))
    dead_letter_queues = (
        _dead_letter_references(template["Resources"])
        | _queues_workflows_send_to(template)
        | _queues_functions_dead_letter_to(template)
    ) & queues
    # The pipes' DLQ, the rule target's, the schedule's and the task DLQ (the task-changes function's outbox).
    assert len(dead_letter_queues) >= 4, dead_letter_queues
    alarmed = {
        queue
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
        if (a["Properties"].get("Namespace"), a["Properties"].get("MetricName"))
        == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        and a["Properties"]["AlarmActions"]
        for d in a["Properties"].get("Dimensions", [])
        if d["Name"] == "QueueName"
        for queue in _referenced_ids(d["Value"])
    }
    assert dead_letter_queues - alarmed == set(), "dead-letter queues without an alarm"


def test_alarms_cover_dlqs_executions_and_functions(template):
    from tests.infra.test_alarms import alarm_metrics

    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    metrics = {(namespace, name) for a in alarms.values() for namespace, name, _ in alarm_metrics(a)}
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in metrics
    assert ("AWS/States", "ExecutionsFailed") in metrics
    assert ("AWS/States", "ExecutionThrottled") in metrics
    assert ("AWS/Lambda", "Errors") in metrics and ("AWS/Lambda", "Throttles") in metrics
    assert all(a["Properties"]["AlarmActions"] for a in alarms.values())
    assert resources_of(template, "AWS::CloudWatch::Dashboard")


def test_functions_get_only_the_actions_they_use(template):
    functions = resources_of(template, "AWS::Lambda::Function")
    role_of = {f["Properties"]["Role"]["Fn::GetAtt"][0]: k for k, f in functions.items()}
    actions_by_role: dict[str, set[str]] = {}
    for _, policy in resources_of(template, "AWS::IAM::Policy").items():
        for role in policy["Properties"]["Roles"]:
            if role["Ref"] in role_of:
                for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                    actions_by_role.setdefault(role_of[role["Ref"]], set()).update(as_list(statement["Action"]))
    names = ("Validate", "Process", "TaskChanges", "Reconcile", "ReadResult", "ProfileChanges", "MeFunction")
    names += ("PushProgress",)  # the live-progress push (infra/constructs/live.py)
    names += ("UserSeen",)  # the access log's subscriber (infra/constructs/users.py)
    by_name = {next(n for n in names if n in k): v for k, v in actions_by_role.items()}
    tracing_and_logs = {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    assert by_name["Validate"] - tracing_and_logs == {"dynamodb:GetItem", "s3:GetObject", "s3:PutObject"}
    assert by_name["Process"] - tracing_and_logs == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "s3:GetObject",
        "s3:PutObject",
        "s3:ListBucket",
    }
    assert by_name["TaskChanges"] - tracing_and_logs == {
        "states:DescribeExecution",
        "states:StopExecution",
        "dynamodb:UpdateItem",  # the outbox mark on the Tasks table
        "dynamodb:GetItem",  # the idempotency records (and UpdateItem, PutItem, DeleteItem)
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "events:PutEvents",
        "sqs:SendMessage",
    }
    assert by_name["ReadResult"] - tracing_and_logs == {"dynamodb:GetItem", "s3:GetObject"}
    # its owner's connections (the Connections table's owner index), a gone one's row, posts to this API's stage
    assert by_name["PushProgress"] - tracing_and_logs == {
        "dynamodb:Query",
        "dynamodb:DeleteItem",
        "execute-api:ManageConnections",
    }
    assert by_name["MeFunction"] - tracing_and_logs == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert by_name["UserSeen"] - tracing_and_logs == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert by_name["ProfileChanges"] - tracing_and_logs == {
        "dynamodb:GetItem",  # the user's record: which subscription is theirs
        "dynamodb:UpdateItem",
        "sns:Subscribe",
        "sns:SetSubscriptionAttributes",
        "sns:Unsubscribe",
    }
    assert by_name["Reconcile"] - tracing_and_logs == {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "states:StartExecution",
        "states:DescribeExecution",
    }


def test_cfn_lint_reports_no_errors(template_path: Path):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", str(template_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    # cfn-lint's exit code is a bit mask: 2 = errors, 4 = warnings, 8 = informational; 1 = it crashed.
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert result.returncode != 1, result.stderr
    assert errors == [] and not result.returncode & 2, result.stdout


def test_cdk_nag_has_no_unacknowledged_findings(template_path: Path):
    report = json.loads((template_path.parent / "validation-report.json").read_text())
    nag = next(r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions")
    assert nag["violations"] == []
    assert nag["conclusion"] == "success"
    for suppressed in nag["suppressedViolations"]:
        assert len(suppressed["reason"]) > 20, suppressed["ruleName"]


def test_generated_asl_matches_the_workflow_code(template):
    assert asl_drift(template) == [], "asl/ is stale: run `make asl`"


@pytest.mark.parametrize("placeholder", ["TasksTableName", "ProcessTaskFunctionLiveArn", "ResultsBucketName"])
def test_asl_uses_placeholders_for_deployment_values(placeholder):
    text = (Path(__file__).resolve().parents[2] / "asl" / "task_lifecycle.asl.json").read_text()
    assert "${" + placeholder + "}" in text
    assert "arn:aws:" not in text, "no partition, region or account may be baked into asl/"
