"""The local stack runs what the aliases point to (docs/DEPLOY.md): a task goes through the start pipe, which starts
the lifecycle's ``live`` alias, and the lifecycle invokes its functions' ``live`` aliases.

AWS's recorded DescribeExecution of an execution started through an alias (LocalStack's
``test_sfn_api_aliasing.snapshot.json``) names ``stateMachineAliasArn`` and ``stateMachineVersionArn``; the execution
ARN stays ``execution:<machine>:<name>``.
"""

from __future__ import annotations

from taskrail.client import TaskrailClient
from taskrail.local.stack import LocalStack


def test_a_task_runs_end_to_end_through_the_lifecycle_alias_and_its_version(
    stack: LocalStack, alice: TaskrailClient
) -> None:
    accepted = alice.submit("text.stats", {"text": "through the alias"})
    task = alice.wait([accepted["taskId"]], timeout=60)[accepted["taskId"]]
    assert task["status"] == "SUCCEEDED"

    sfn = stack.clients("stepfunctions")
    described = sfn.describe_execution(executionArn=task["executionArn"])
    machine = described["stateMachineArn"]
    print("the pipe's execution:", {k: v for k, v in described.items() if k.startswith("stateMachine")})
    assert described["stateMachineAliasArn"] == f"{machine}:live"
    # what a replay starts (Output StateMachineAliasArn, taskrail/operator/aws.py): the same alias
    assert stack.info is not None
    assert stack.info.state_machine_alias_arn == described["stateMachineAliasArn"]
    alias = sfn.describe_state_machine_alias(stateMachineAliasArn=described["stateMachineAliasArn"])
    assert [route["stateMachineVersionArn"] for route in alias["routingConfiguration"]] == [
        described["stateMachineVersionArn"]
    ]
    assert task["executionArn"].split(":")[5] == "execution"  # unqualified, as on AWS

    history = sfn.get_execution_history(executionArn=task["executionArn"], maxResults=1000)["events"]
    invoked = {
        event["taskScheduledEventDetails"]["parameters"]
        for event in history
        if event["type"] == "TaskScheduled" and event["taskScheduledEventDetails"]["resourceType"] == "lambda"
    }
    print("lambda tasks scheduled with:", *sorted(invoked), sep="\n  ")
    assert invoked and all(":function:" in p and ':live"' in p for p in invoked)
