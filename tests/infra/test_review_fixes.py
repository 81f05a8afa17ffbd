"""Findings of docs/AWS-REVIEW.md fixed in the pipe and the function grants."""

from tests.infra.test_template import as_list, resources_of


def test_both_pipes_process_ten_batches_of_a_shard_at_once(template):
    # the task-changes pipe at 1 held the design at 34.4 tasks/s (taskrail capacity; docs/CAPACITY.md)
    pipes = resources_of(template, "AWS::Pipes::Pipe")
    factors = {
        logical_id: pipe["Properties"]["SourceParameters"]["DynamoDBStreamParameters"].get("ParallelizationFactor", 1)
        for logical_id, pipe in pipes.items()
    }
    assert {k: v for k, v in factors.items() if "Start" in k}.popitem()[1] == 10
    assert {k: v for k, v in factors.items() if "TaskChanges" in k}.popitem()[1] == 10
    for logical_id, pipe in pipes.items():
        if logical_id.startswith("Pipes"):  # the lifecycle's two (the push pipe batches: infra/constructs/live.py)
            assert pipe["Properties"]["SourceParameters"]["DynamoDBStreamParameters"]["BatchSize"] == 1


def test_only_pipes_of_this_account_may_assume_the_pipe_roles(template):
    roles = [
        role
        for role in resources_of(template, "AWS::IAM::Role").values()
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        if statement["Principal"].get("Service") == "pipes.amazonaws.com"
    ]
    assert len(roles) == len(resources_of(template, "AWS::Pipes::Pipe"))  # one role per pipe
    for role in roles:
        [statement] = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_process_may_list_only_the_diagnostics_prefix(template):
    listing = [
        statement
        for policy in resources_of(template, "AWS::IAM::Policy").values()
        for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"])
        if "s3:ListBucket" in as_list(statement["Action"])
    ]
    assert listing
    for statement in listing:
        assert statement["Condition"] == {"StringLike": {"s3:prefix": ["diagnostics/*"]}}


def test_execution_log_groups_live_under_vendedlogs(template):
    machines = resources_of(template, "AWS::StepFunctions::StateMachine")
    groups = resources_of(template, "AWS::Logs::LogGroup")
    for machine in machines.values():
        for destination in machine["Properties"]["LoggingConfiguration"]["Destinations"]:
            group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
            assert groups[group_id]["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/states/")


def test_the_notification_archive_subscription_keeps_what_sns_cannot_deliver(template):
    [subscription] = [
        s["Properties"]
        for s in resources_of(template, "AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "sqs"
    ]
    assert "deadLetterTargetArn" in subscription["RedrivePolicy"]


def test_every_dead_letter_queue_pages_for_each_new_message(template):
    from tests.infra.test_alarms import alarm_metrics

    queues_watched_for_visible, queues_watched_for_sent = set(), set()
    for alarm in resources_of(template, "AWS::CloudWatch::Alarm").values():
        for namespace, name, dimensions in alarm_metrics(alarm):
            queue = next((d["Value"]["Fn::GetAtt"][0] for d in dimensions if d["Name"] == "QueueName"), None)
            if (namespace, name) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible"):
                queues_watched_for_visible.add(queue)
            if (namespace, name) == ("AWS/SQS", "NumberOfMessagesSent"):
                queues_watched_for_sent.add(queue)
    assert queues_watched_for_visible
    assert queues_watched_for_sent == queues_watched_for_visible


def _topic_key_statements(template) -> list[dict]:
    [key] = resources_of(template, "AWS::KMS::Key").values()
    return key["Properties"]["KeyPolicy"]["Statement"]


def test_each_service_may_use_the_topic_key_only_to_publish_and_only_once(template):
    """A publisher to an encrypted topic needs kms:Decrypt and kms:GenerateDataKey* ("Enable compatibility between
    event sources from AWS services and encrypted topics", Amazon SNS Developer Guide). SNS itself needs no grant on
    the topic's key: the archive queue it delivers to is SSE-SQS (a CMK-encrypted queue would need one on the
    queue's key)."""
    services = [
        (s["Principal"]["Service"], sorted(as_list(s["Action"])))
        for s in _topic_key_statements(template)
        if "Service" in s.get("Principal", {})
    ]
    assert sorted(name for name, _ in services) == ["cloudwatch.amazonaws.com", "events.amazonaws.com"]
    for _, actions in services:
        assert actions == ["kms:Decrypt", "kms:GenerateDataKey*"]


def test_only_this_accounts_alarms_may_use_the_topic_key(template):
    """CloudWatch's requests to KMS carry aws:SourceAccount and aws:SourceArn, so its grant is scoped (confused
    deputy). EventBridge's do not carry them, so its grant must stay unconditioned or every notification is lost."""
    by_service = {
        s["Principal"]["Service"]: s for s in _topic_key_statements(template) if "Service" in s.get("Principal", {})
    }
    cloudwatch = by_service["cloudwatch.amazonaws.com"]["Condition"]
    assert cloudwatch["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    parts = cloudwatch["ArnLike"]["aws:SourceArn"]["Fn::Join"][1]
    assert ":cloudwatch:" in parts and parts[-1] == ":alarm:*"
    assert "Condition" not in by_service["events.amazonaws.com"]


def test_only_the_outcome_rule_may_publish_to_the_notifications_topic(template):
    """The topic policy scopes ("Using resource-based policies for Amazon EventBridge", Amazon SNS permissions)
    events.amazonaws.com with aws:SourceArn, or any rule of any account that targets the topic may publish."""
    rules = [k for k in resources_of(template, "AWS::Events::Rule") if "TaskOutcomeToTopicRule" in k]
    [rule] = rules
    [policy] = [p for k, p in resources_of(template, "AWS::SNS::TopicPolicy").items() if "NotificationsTopic" in k]
    [statement] = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow" and s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [rule, "Arn"]}}}


def test_a_destroyed_stack_schedules_its_topic_key_for_deletion_after_seven_days():
    """A customer managed key is billed monthly until deleted ("AWS KMS pricing"); the topics it protects store
    nothing, so a stack deployed with RemovalPolicy.DESTROY schedules the key's deletion with the shortest window."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.stack import TaskrailStack

    app = cdk.App()
    template = Template.from_stack(TaskrailStack(app, "t", removal_policy=cdk.RemovalPolicy.DESTROY)).to_json()
    [key] = resources_of(template, "AWS::KMS::Key").values()
    assert key["DeletionPolicy"] == "Delete"
    assert key["Properties"]["PendingWindowInDays"] == 7


def test_each_state_machine_logs_without_the_execution_data_the_per_task_ones_only_errors(template, express_template):
    """Every state's input and output would otherwise be ingested into CloudWatch Logs as well as kept in the
    STANDARD execution history ("Logging Step Functions using CloudWatch Logs", includeExecutionData). The per-task
    STANDARD workflows log ERROR (their history is in the console; docs/COST.md, Logging); the reconciler, once
    every 5 minutes, and an EXPRESS lifecycle, whose logs are its only history, log ALL."""
    levels = {}
    for name, source in (("STANDARD", template), ("EXPRESS", express_template)):
        for logical_id, machine in resources_of(source, "AWS::StepFunctions::StateMachine").items():
            logging = machine["Properties"]["LoggingConfiguration"]
            assert logging["IncludeExecutionData"] is False, logical_id
            levels[(name, logical_id.removeprefix("Workflow")[:24])] = logging["Level"]
    print(levels)
    assert levels == {
        ("STANDARD", "TaskLifecycleStateMachin"): "ERROR",
        ("STANDARD", "RecorderFailureRecorderSt"[:24]): "ERROR",
        ("STANDARD", "ReconcilerReconcilerState"[:24]): "ALL",
        ("EXPRESS", "TaskLifecycleStateMachin"): "ALL",
        ("EXPRESS", "ReconcilerReconcilerState"[:24]): "ALL",
    }


def test_each_pipe_logs_its_failed_deliveries_under_vendedlogs(template):
    """Per "Logging and monitoring Amazon EventBridge Pipes", without a LogConfiguration, a target failure is only a
    DLQ message and a metric. The pipe's role may write to its own group only."""
    groups = resources_of(template, "AWS::Logs::LogGroup")
    for logical_id, pipe in resources_of(template, "AWS::Pipes::Pipe").items():
        config = pipe["Properties"]["LogConfiguration"]
        assert config["Level"] == "ERROR", logical_id
        group_id = config["CloudwatchLogsLogDestination"]["LogGroupArn"]["Fn::GetAtt"][0]
        assert groups[group_id]["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/pipes/")


def test_the_access_log_tells_an_integration_failure_from_a_template_mistake(template):
    """Per "Variables for access logging for API Gateway", $context.integration.* is the integration's own status,
    error and latency; $context.identity.userArn is the caller's stable principal (the tasks' owner)."""
    import json

    [stage] = resources_of(template, "AWS::ApiGateway::Stage").values()
    fields = json.loads(stage["Properties"]["AccessLogSetting"]["Format"])
    assert fields["userArn"] == "$context.identity.userArn"
    assert fields["integrationStatus"] == "$context.integration.status"
    assert fields["integrationError"] == "$context.integration.error"
    assert fields["integrationLatency"] == "$context.integration.latency"
    assert {"requestId", "status", "httpMethod", "resourcePath", "requestTime"} <= set(fields)


def _synth(context: dict[str, str]) -> dict:
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.stack import TaskrailStack

    return Template.from_stack(TaskrailStack(cdk.App(context=context), "t")).to_json()


def test_the_account_wide_api_gateway_logging_role_outlives_the_stack(template):
    """AWS::ApiGateway::Account is one setting per region and account ("you should only have one
    AWS::ApiGateway::Account resource per region per account"): every REST API of the region logs through the role
    it names, so deleting taskrail must not delete that role (aws/aws-cdk#10878)."""
    [account] = resources_of(template, "AWS::ApiGateway::Account").values()
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    assert template["Resources"][role_id]["DeletionPolicy"] == "Retain"


def test_an_account_with_its_own_api_gateway_logging_role_keeps_it():
    template = _synth({"apiGatewayCloudWatchRole": "existing"})
    assert resources_of(template, "AWS::ApiGateway::Account") == {}
    assert not [k for k in resources_of(template, "AWS::IAM::Role") if "CloudWatchRole" in k]


def test_at_most_two_readers_share_the_tasks_stream(template):
    """DynamoDB Streams GetRecords, LimitExceededException: "More than 2 processes are reading from the same streams
    shard at the same time. Exceeding this limit may result in request throttling." Every pipe or event source
    mapping on the Tasks stream is one such reader, so a new consumer must share one (docs/AWS-REVIEW.md)."""
    import json

    readers = [
        logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] in ("AWS::Pipes::Pipe", "AWS::Lambda::EventSourceMapping")
        and "StreamArn"
        in json.dumps(resource["Properties"].get("Source", resource["Properties"].get("EventSourceArn")))
        and "TasksTable"
        in json.dumps(resource["Properties"].get("Source", resource["Properties"].get("EventSourceArn")))
    ]
    # The live-progress push pipe is the one reader past two, decided with the risk written down (docs/DECISIONS.md
    # "Live progress on AWS: a third reader of the Tasks stream"); nothing else may add one.
    lifecycle = [r for r in readers if not r.startswith("LiveProgressPushProgressPipe")]
    assert 1 <= len(lifecycle) <= 2 and len(readers) - len(lifecycle) <= 1, readers
