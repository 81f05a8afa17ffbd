"""IAM enforced on the running local stack: each principal acts as its role, and the template's policies decide.

The normal path passes with every call evaluated (no denial in the IAM log). Then, per kind of principal, one
needed grant is dropped from a scratch copy of the template (the stack's policies are reloaded from it, the
resources stay) and the path fails where it fails on AWS, with AWS's error:

* the state machine's role without ``dynamodb:UpdateItem``: ``ClaimTask`` fails with
  ``DynamoDB.AccessDeniedException`` (not caught: the execution fails there; the task stays QUEUED);
* the state machine's role without ``lambda:InvokeFunction`` on ValidateTaskFunction: ``ValidateParameters`` fails
  with ``Lambda.AWSLambdaException`` (AWS's name, docs/LOCAL-FIDELITY.md), is retried by its Retry, then the
  execution fails there and the failure recorder sets the task FAILED (one DLQ message);
* a function's role without ``dynamodb:GetItem``: the AccessDeniedException is raised inside the function
  (``ClientError``), the workflow's Catch records the failure;
* the pipe's role without ``states:StartExecution``: every delivery attempt fails and the record goes to the
  pipe's dead-letter queue;
* the schedule's role without ``states:StartExecution``: the run is dead-lettered with ``ERROR_CODE``
  ``AccessDeniedException``;
* the API's integration role without ``dynamodb:UpdateItem``: ``POST /tasks`` answers 400 with IAM's message and
  stores nothing.

The grant is restored in a ``finally`` and every test runs the path again and sees its normal outcome. IAM's
message format: "Troubleshoot access denied error messages" (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from taskrail.client import ApiError, TaskrailClient
from taskrail.local.stack import LocalStack
from taskrail.operator import Operator
from tests.e2e.polling import wait_for
from tests.e2e.test_failure_path import dead_letters_of, recorder_runs_for
from tests.e2e.test_local_stack import notifications_of

pytestmark = pytest.mark.e2e

ECHO = ("diagnostic.echo", {"payload": {"principal": "iam"}})


def _statement_index(document: dict[str, Any], action: str, part: str = "") -> int:
    for index, statement in enumerate(document["Statement"]):
        actions = statement.get("Action")
        actions = actions if isinstance(actions, list) else [actions]
        if action in actions and statement["Effect"] == "Allow" and part in json.dumps(statement):
            return index
    raise AssertionError(f"no statement allows {action} ({part})")


@contextmanager
def without_grant(stack: LocalStack, policy_prefix: str, action: str, part: str = "") -> Iterator[str]:
    """The stack's policies from a copy of its template lacking, in the policy ``policy_prefix``*, the grant of
    ``action`` (by the Allow statement that mentions ``part``); restored afterwards. Yields the statement's id."""
    template = stack.template
    policy = next(k for k in template["Resources"] if k.startswith(policy_prefix))
    mutated = copy.deepcopy(template)
    props = mutated["Resources"][policy]["Properties"]
    document = props.get("PolicyDocument") or props["KeyPolicy"]
    index = _statement_index(document, action, part)
    actions = document["Statement"][index]["Action"]
    if isinstance(actions, list) and len(actions) > 1:
        actions.remove(action)  # drop only this action from the statement
    else:
        del document["Statement"][index]
    assert stack.iam is not None and stack.resources is not None
    stack.iam.load(mutated, stack.resources)
    try:
        yield f"{policy}[{index}]"
    finally:
        stack.iam.load(template, stack.resources)


def _denials_since(stack: LocalStack, mark: int) -> list[Any]:
    assert stack.iam is not None
    return [r for r in stack.iam.log.records[mark:] if not r.allowed]


def _mark(stack: LocalStack) -> int:
    assert stack.iam is not None
    return len(stack.iam.log.records)


def _final(alice: TaskrailClient, task_id: str, statuses: set[str]) -> dict[str, Any]:
    return wait_for(lambda: (t := alice.get(task_id))["status"] in statuses and t, what=f"{task_id} in {statuses}")


def _succeeds(alice: TaskrailClient) -> dict[str, Any]:
    """With the template's grants back: a task runs to SUCCEEDED (the restored path passes)."""
    task = alice.submit(*ECHO)
    final = _final(alice, task["taskId"], {"SUCCEEDED", "FAILED", "REJECTED"})
    assert final["status"] == "SUCCEEDED", final
    return final


def test_a_task_runs_with_every_principal_enforced_and_no_call_denied(stack: LocalStack, alice: TaskrailClient) -> None:
    assert stack.iam is not None and stack.iam.enforce
    mark = _mark(stack)
    task = alice.submit(*ECHO)
    final = _final(alice, task["taskId"], {"SUCCEEDED", "FAILED", "REJECTED"})
    assert final["status"] == "SUCCEEDED", final
    roles = stack.iam.roles
    expected = {
        roles.state_machines[stack.info.state_machine_arn].role_arn,  # type: ignore[union-attr]
        roles.pipes["StartWorkflowPipe"].role_arn,
        next(iter(roles.api_methods.values())).role_arn,
        *(c.role_arn for n, c in roles.functions.items() if "Validate" in n or "Process" in n),
        # the outbox publishes the outcome just after the task is SUCCEEDED, and the rule delivers it to the topic
        *(c.role_arn for n, c in roles.functions.items() if "TaskChanges" in n),
        roles.pipes["TaskChangesPipe"].role_arn,
        "events.amazonaws.com",
    }
    wait_for(
        lambda: expected <= {r.principal for r in stack.iam.log.records[mark:]} or None,
        what="every principal of the task's path, its outcome's delivery included",
    )
    records = stack.iam.log.records[mark:]
    principals = {r.principal.rsplit("/", 1)[-1] for r in records}
    print(f"IAM decisions for one task: {len(records)}, principals: {sorted(principals)}")
    assert not _denials_since(stack, mark)
    assert expected <= {r.principal for r in records}, expected - {r.principal for r in records}


def test_the_state_machine_role_without_update_item_fails_at_claim(stack: LocalStack, alice: TaskrailClient) -> None:
    assert stack.info is not None
    sfn = stack.clients("stepfunctions")
    with without_grant(stack, "WorkflowTaskLifecycleStateMachineRoleDefaultPolicy", "dynamodb:UpdateItem") as dropped:
        task = alice.submit(*ECHO)
        execution = wait_for(
            lambda: next(
                (e for e in sfn.list_executions(stateMachineArn=stack.info.state_machine_arn)["executions"]
                 if e["status"] == "FAILED" and _input_task(sfn, e) == task["taskId"]), None,
            ),
            what="the execution to fail",
        )  # fmt: skip
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        print(f"without {dropped}: {described['error']}: {described['cause'][:300]}")
        assert described["error"] == "DynamoDB.AccessDeniedException"
        assert "assumed-role/" in described["cause"]
        assert "is not authorized to perform: dynamodb:UpdateItem on resource: arn:aws:dynamodb:" in described["cause"]
        failed_state = [e for e in sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
                        if e["type"] == "TaskFailed"]  # fmt: skip
        assert failed_state and failed_state[0]["taskFailedEventDetails"]["resource"] == "updateItem"
        assert alice.get(task["taskId"])["status"] == "QUEUED"
    again = alice.submit(*ECHO)
    assert _final(alice, again["taskId"], {"SUCCEEDED", "FAILED"})["status"] == "SUCCEEDED"


def test_the_state_machine_role_without_invoke_fails_validate_with_lambdas_aws_name_after_its_retries(
    stack: LocalStack, alice: TaskrailClient, alice_operator: Operator
) -> None:
    # AWS names this denial Lambda.AWSLambdaException, Lambda's 403 AccessDeniedException in the cause: an AWS
    # execution quoted in awslabs/aws-deployment-framework#460 (and aws-samples/lambda-refarch-imagerecognition#19).
    # ValidateParameters retries that name (MaxAttempts 6), has no Catch for it: the execution fails at the state,
    # its status-change event starts the failure recorder, which sets the task FAILED; the outbox dead-letters it.
    sfn = stack.clients("stepfunctions")
    policy = "WorkflowTaskLifecycleStateMachineRoleDefaultPolicy"
    with without_grant(stack, policy, "lambda:InvokeFunction", "ValidateTaskFunction") as dropped:
        mark = _mark(stack)
        task_id = alice.submit(*ECHO)["taskId"]
        final = _final(alice, task_id, {"SUCCEEDED", "FAILED", "REJECTED"})
        denied = _denials_since(stack, mark)
    arn = final["executionArn"]
    described = sfn.describe_execution(executionArn=arn)
    failed = [e["taskFailedEventDetails"] for e in sfn.get_execution_history(executionArn=arn)["events"]
              if e["type"] == "TaskFailed"]  # fmt: skip
    print(f"without {dropped}: {len(failed)} TaskFailed {sorted({f['error'] for f in failed})}, execution "
          f"{described['status']} {described['error']}; task {final['status']} {final.get('error')}: "
          f"{str(final.get('cause'))[:260]}")  # fmt: skip
    assert [f["error"] for f in failed] == ["Lambda.AWSLambdaException"] * 7  # the first try and 6 retries
    assert {(f["resourceType"], f["resource"]) for f in failed} == {("lambda", "invoke")}
    assert "(Service: AWSLambda; Status Code: 403; Error Code: AccessDeniedException;" in failed[0]["cause"]
    assert "assumed-role/taskrail-WorkflowTaskLifecycleStateMachineRole" in failed[0]["cause"]
    assert "is not authorized to perform: lambda:InvokeFunction on resource: " in failed[0]["cause"]
    assert "function:taskrail-ValidateTaskFunction" in failed[0]["cause"]
    assert (described["status"], described["error"]) == ("FAILED", "Lambda.AWSLambdaException")
    assert {(r.action, r.resource.split(":function:")[-1]) for r in denied} == {
        ("lambda:InvokeFunction", "taskrail-ValidateTaskFunction:live")
    }
    assert (final["status"], final["error"]) == ("FAILED", "Lambda.AWSLambdaException")
    assert [r["status"] for r in wait_for(lambda: recorder_runs_for(stack, arn), what="the recorder's run")] == [
        "SUCCEEDED"
    ]
    messages = wait_for(lambda: dead_letters_of(alice_operator, task_id), timeout=30, what="the DLQ message")
    assert [(m["executionArn"], m["error"]) for m in messages] == [(arn, "Lambda.AWSLambdaException")]
    _succeeds(alice)


def _input_task(sfn: Any, execution: dict[str, Any]) -> str | None:
    body = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    first = body[0] if isinstance(body, list) and body else None
    return (
        first
        if isinstance(first, str)
        else (first or {}).get("dynamodb", {}).get("Keys", {}).get("taskId", {}).get("S")
    )


def test_a_function_role_without_get_item_fails_inside_the_function(stack: LocalStack, alice: TaskrailClient) -> None:
    with without_grant(stack, "FunctionsValidateTaskFunctionRoleDefaultPolicy", "dynamodb:GetItem") as dropped:
        mark = _mark(stack)
        task = alice.submit(*ECHO)
        final = _final(alice, task["taskId"], {"SUCCEEDED", "FAILED", "REJECTED"})
        denied = _denials_since(stack, mark)
        print(f"without {dropped}: task {final['status']}: {final.get('error')}: {str(final.get('cause'))[:300]}")
        assert final["status"] == "FAILED"
        assert "AccessDeniedException" in str(final.get("cause")) + str(final.get("error"))
        assert any(r.action == "dynamodb:GetItem" and "ValidateTaskFunction" in r.principal for r in denied)
    _succeeds(alice)


def test_the_pipe_role_without_start_execution_dead_letters_the_record(
    stack: LocalStack, alice: TaskrailClient
) -> None:
    assert stack.info is not None
    sqs, url = stack.clients("sqs"), stack.info.pipe_dead_letter_queue_url
    with without_grant(stack, "PipesStartPipeRoleDefaultPolicy", "states:StartExecution") as dropped:
        task = alice.submit(*ECHO)

        def dead_lettered() -> dict[str, Any] | None:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                body = json.loads(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                if task["taskId"] in json.dumps(body):
                    return body
            return None

        body = wait_for(dead_lettered, what="the record in the pipe DLQ")
        print(f"without {dropped}: pipe DLQ reason: {body.get('reason', '')[:300]}")
        assert "AccessDeniedException" in body["reason"]
        assert "is not authorized to perform: states:StartExecution" in body["reason"]
        assert alice.get(task["taskId"])["status"] == "QUEUED"
    _succeeds(alice)


def _drain(stack: LocalStack, url: str) -> list[dict[str, Any]]:
    """Every message in a queue, with its attributes, deleted."""
    sqs, found = stack.clients("sqs"), []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages"
    ):
        for message in batch:
            found.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_the_schedule_role_without_start_execution_dead_letters_the_run(stack: LocalStack) -> None:
    scheduler = stack.scheduler
    assert scheduler is not None and stack.resources is not None
    dlq = stack.resources.ref("ScheduleDeadLetterQueue")
    _drain(stack, dlq)
    with without_grant(stack, "ReconcilerScheduleRoleDefaultPolicy", "states:StartExecution") as dropped:
        before = sum(scheduler.dead_lettered.values())
        assert scheduler.run_once() == []
        assert sum(scheduler.dead_lettered.values()) == before + 1
    [message] = _drain(stack, dlq)
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    print(f"without {dropped}: the reconciler run was dead-lettered: {attributes['ERROR_CODE']}: "
          f"{attributes['ERROR_MESSAGE'][:220]}")  # fmt: skip
    assert attributes["ERROR_CODE"] == "AccessDeniedException"
    assert "assumed-role/taskrail-ReconcilerScheduleRole" in attributes["ERROR_MESSAGE"]
    assert "is not authorized to perform: states:StartExecution on resource: " in attributes["ERROR_MESSAGE"]
    assert attributes["TARGET_ARN"] in attributes["ERROR_MESSAGE"]
    assert len(scheduler.run_once()) == 1
    assert not _drain(stack, dlq)


def test_the_api_integration_role_without_update_item_stores_nothing(stack: LocalStack, alice: TaskrailClient) -> None:
    mark = _mark(stack)
    with (
        without_grant(stack, "ApiIntegrationRoleDefaultPolicy", "dynamodb:UpdateItem") as dropped,
        pytest.raises(ApiError) as refused,
    ):
        alice.submit(*ECHO)
    print(f"without {dropped}: POST /tasks -> {refused.value}")
    assert refused.value.status == 400
    assert refused.value.message.startswith("User: arn:aws:sts::")
    assert "assumed-role/taskrail-ApiIntegrationRole" in refused.value.message
    assert "is not authorized to perform: dynamodb:UpdateItem on resource: arn:aws:dynamodb:" in refused.value.message
    assert ":table/taskrail-" in refused.value.message
    assert any(r.action == "dynamodb:UpdateItem" and not r.allowed for r in _denials_since(stack, mark))
    _succeeds(alice)


def _messages(stack: LocalStack, url: str, task_id: str) -> list[dict[str, Any]]:
    """This task's messages in a queue (read with their attributes, deleted; others' are left)."""
    sqs = stack.clients("sqs")
    found = []
    batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    for message in batch.get("Messages", []):
        if task_id in message["Body"]:
            found.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        else:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return found


@pytest.mark.parametrize(
    ("policy", "action", "part"),
    [
        ("NotificationsNotificationsTopicPolicy", "sns:Publish", "events.amazonaws.com"),  # the topic policy
        ("NotificationsTopicKey", "kms:GenerateDataKey*", "events.amazonaws.com"),  # the topic's key policy
    ],
    ids=["topic-policy", "key-policy"],
)
def test_the_rule_target_without_its_grant_sends_the_event_to_the_rule_dlq(
    stack: LocalStack, alice: TaskrailClient, policy: str, action: str, part: str
) -> None:
    assert stack.resources is not None
    dlq = stack.resources.ref("EventRuleDeadLetterQueue")
    with without_grant(stack, policy, action, part) as dropped:
        task = alice.submit(*ECHO)
        assert _final(alice, task["taskId"], {"SUCCEEDED", "FAILED"})["status"] == "SUCCEEDED"
        [message] = wait_for(lambda: _messages(stack, dlq, task["taskId"]), what="the event in the rule's DLQ")
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    print(f"without {dropped}: {attributes['ERROR_CODE']}: {attributes['ERROR_MESSAGE'][:200]}")
    assert attributes["ERROR_CODE"] == "NO_PERMISSIONS"
    assert attributes["RULE_ARN"] == stack.resources.attr("TaskOutcomeToTopicRule", "Arn")
    assert attributes["ERROR_MESSAGE"].startswith("User: events.amazonaws.com is not authorized to perform: ")
    assert not _messages(stack, stack.resources.ref("NotificationsArchiveQueue"), task["taskId"])
    again = _succeeds(alice)  # with the grant back, the outcome reaches the topic and its archive queue
    assert notifications_of(stack, again["taskId"], Counter(SUCCEEDED=1)) == Counter(SUCCEEDED=1)
    assert not _messages(stack, dlq, again["taskId"])


def test_the_subscription_without_its_queue_grant_moves_the_notification_to_its_dlq(
    stack: LocalStack, alice: TaskrailClient
) -> None:
    # SNS delivers to the archive queue as sns.amazonaws.com on behalf of the topic; a queue policy that refuses it
    # is a client-side error: not retried, the message moved to the subscription's DLQ ("Amazon SNS dead-letter
    # queues", SNS Developer Guide)
    assert stack.resources is not None
    archive, dlq = stack.resources.ref("NotificationsArchiveQueue"), stack.resources.ref("EventRuleDeadLetterQueue")
    mark = _mark(stack)
    with without_grant(stack, "NotificationsNotificationsArchiveQueuePolicy", "sqs:SendMessage") as dropped:
        task = alice.submit(*ECHO)
        assert _final(alice, task["taskId"], {"SUCCEEDED", "FAILED"})["status"] == "SUCCEEDED"
        [message] = wait_for(lambda: _messages(stack, dlq, task["taskId"]), what="the notification in the sub's DLQ")
    denied = [r for r in _denials_since(stack, mark) if r.principal == "sns.amazonaws.com"]
    print(f"without {dropped}: {len(denied)} SNS deliveries refused, the notification is in the subscription's DLQ")
    assert denied and {r.action for r in denied} == {"sqs:SendMessage"}
    assert json.loads(message["Body"])["taskId"] == task["taskId"]  # the message as the archive would get it
    assert not _messages(stack, archive, task["taskId"])
    again = _succeeds(alice)
    assert notifications_of(stack, again["taskId"], Counter(SUCCEEDED=1)) == Counter(SUCCEEDED=1)
    assert not _messages(stack, dlq, again["taskId"])


def _alarm_actions(alarm: str) -> list[str]:
    """The alarm's action entries in its history ("Successfully executed action ..." / "Failed to execute ...")."""
    from taskrail.local.region import ACCOUNT_ID, REGION
    from taskrail.local.services.cloudwatch import alarm_action_history

    return alarm_action_history(alarm, ACCOUNT_ID, REGION)


@pytest.mark.parametrize(
    ("policy", "action"),
    [("NotificationsAlarmTopicPolicy", "sns:Publish"), ("NotificationsTopicKey", "kms:GenerateDataKey*")],
    ids=["topic-policy", "key-policy"],
)
def test_an_alarm_action_publishes_as_cloudwatch_and_without_its_grant_it_fails(
    stack: LocalStack, policy: str, action: str
) -> None:
    # The alarm topic has no subscriber in the template (an operator adds one), so the action's outcome is read where
    # CloudWatch records it: the alarm's history. The message's shape: tests/local/services/test_service_deliveries.
    assert stack.resources is not None and stack.iam is not None
    cloudwatch = stack.clients("cloudwatch")
    alarm, topic = stack.resources.ref("TaskDeadLetterQueueNotEmpty"), stack.resources.ref("AlarmTopic")
    try:
        # with the template's grants: SetAlarmState to ALARM runs the alarm's action, as CloudWatch does
        mark, before = _mark(stack), len(_alarm_actions(alarm))
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="e2e: the action runs")
        assert _alarm_actions(alarm)[before:] == [f"Successfully executed action {topic}"]
        records = stack.iam.log.records[mark:]
        decided = {(r.action, r.allowed) for r in records if r.principal == "cloudwatch.amazonaws.com"}
        assert decided == {("sns:Publish", True), ("kms:GenerateDataKey", True)}
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="e2e: reset")

        with without_grant(stack, policy, action, "cloudwatch") as dropped:
            mark, before = _mark(stack), len(_alarm_actions(alarm))
            cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="e2e: the action fails")
            denied = _denials_since(stack, mark)
        print(f"without {dropped}: {denied[0].action} denied for cloudwatch.amazonaws.com on {denied[0].resource}")
        assert [(r.principal, r.action) for r in denied] == [("cloudwatch.amazonaws.com", action.rstrip("*"))]
        [failed] = _alarm_actions(alarm)[before:]
        assert failed.startswith(f"Failed to execute action {topic}. Received error: User: cloudwatch.amazonaws.com")

        # with the grant back, the action runs again
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="e2e: reset")
        mark, before = _mark(stack), len(_alarm_actions(alarm))
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="e2e: the action runs again")
        assert _alarm_actions(alarm)[before:] == [f"Successfully executed action {topic}"]
        assert not _denials_since(stack, mark)
    finally:
        cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="e2e: reset")


def test_the_failure_rule_targets_role_without_start_execution_sends_the_event_to_the_rule_dlq(
    stack: LocalStack, alice: TaskrailClient
) -> None:
    # EventBridge starts the failure recorder with the target's RoleArn ("Amazon EventBridge targets": the role
    # EventBridge uses to send events to the target); without states:StartExecution the delivery is refused and,
    # not retried, goes to the target's DLQ with ERROR_CODE NO_PERMISSIONS
    assert stack.resources is not None
    dlq = stack.resources.ref("EventRuleDeadLetterQueue")
    with without_grant(stack, "WorkflowFailureRuleRoleDefaultPolicy", "states:StartExecution") as dropped:
        task = alice.submit("diagnostic.flaky", {"failures": 10})
        running = wait_for(lambda: (t := alice.get(task["taskId"])).get("executionArn") and t, what="its execution")
        [message] = wait_for(
            lambda: _messages(stack, dlq, running["executionArn"]), what="the status-change event in the DLQ"
        )
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    print(f"without {dropped}: {attributes['ERROR_CODE']}: {attributes['ERROR_MESSAGE'][:220]}")
    assert attributes["ERROR_CODE"] == "NO_PERMISSIONS"
    assert attributes["RULE_ARN"] == stack.resources.attr("LifecycleFailedRule", "Arn")
    assert "assumed-role/taskrail-WorkflowFailureRuleRole" in attributes["ERROR_MESSAGE"]
    assert "is not authorized to perform: states:StartExecution" in attributes["ERROR_MESSAGE"]
    event = json.loads(message["Body"])
    assert (event["detail-type"], event["detail"]["status"]) == ("Step Functions Execution Status Change", "FAILED")
    # nothing recorded the failure: the task is left RUNNING for the reconciler, as a lost event would leave it
    assert alice.get(task["taskId"])["status"] == "RUNNING"
    # with the grant back, the rule starts the recorder and the failure is recorded
    again = alice.submit("diagnostic.flaky", {"failures": 10})
    recorded = _final(alice, again["taskId"], {"SUCCEEDED", "FAILED", "REJECTED"})
    assert recorded["status"] == "FAILED", recorded
    assert [r["status"] for r in recorder_runs_for(stack, recorded["executionArn"])] == ["SUCCEEDED"]
    assert not _messages(stack, dlq, recorded["executionArn"])
