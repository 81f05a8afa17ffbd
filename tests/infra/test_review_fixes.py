"""Findings of docs/AWS-REVIEW.md fixed in the pipe and the function grants."""

from tests.infra.test_template import as_list, resources_of


def test_the_start_pipe_processes_ten_batches_of_a_shard_at_once_and_the_cancel_pipe_one(template):
    pipes = resources_of(template, "AWS::Pipes::Pipe")
    factors = {
        logical_id: pipe["Properties"]["SourceParameters"]["DynamoDBStreamParameters"].get("ParallelizationFactor", 1)
        for logical_id, pipe in pipes.items()
    }
    assert {k: v for k, v in factors.items() if "Start" in k}.popitem()[1] == 10
    assert {k: v for k, v in factors.items() if "Cancel" in k}.popitem()[1] == 1
    for pipe in pipes.values():
        assert pipe["Properties"]["SourceParameters"]["DynamoDBStreamParameters"]["BatchSize"] == 1


def test_only_pipes_of_this_account_may_assume_the_pipe_roles(template):
    roles = [
        role
        for role in resources_of(template, "AWS::IAM::Role").values()
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        if statement["Principal"].get("Service") == "pipes.amazonaws.com"
    ]
    assert len(roles) == 2
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
