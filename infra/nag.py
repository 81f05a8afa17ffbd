"""cdk-nag (v3) acknowledgements, each with the reason a reviewer would accept.

cdk-nag 3 acknowledges each finding separately (``RuleId[finding]``); tests/infra checks that the synth
reports no unacknowledged finding, so a new wildcard fails the build until someone writes its reason here.
"""

from aws_cdk import Acknowledgment, Stack, Token, Validations

OBJECT_PREFIX_REASON = (
    "Object-level access under one key prefix of the results bucket (the prefix is the least privilege: "
    "task objects are keyed by task id)."
)
ACKNOWLEDGEMENTS: dict[str, str] = {
    "AwsSolutions-IAM5[Resource::*]": (
        "X-Ray PutTraceSegments/PutTelemetryRecords and the CloudWatch Logs delivery actions used by "
        "Step Functions logging have no resource-level permissions."
    ),
    "AwsSolutions-IAM5[Resource::<StorageResultsBucketF87BB70E.Arn>/tasks/*]": OBJECT_PREFIX_REASON,
    "AwsSolutions-IAM5[Resource::<StorageResultsBucketF87BB70E.Arn>/users/*]": OBJECT_PREFIX_REASON,
    "AwsSolutions-IAM5[Resource::<StorageResultsBucketF87BB70E.Arn>/diagnostics/*]": OBJECT_PREFIX_REASON,
    "AwsSolutions-IAM5[Resource::<StorageResultsBucketF87BB70E.Arn>/tasks/*/result.json]": (
        "The result function reads a task's result object, whichever task the owner check allowed: one key name "
        "under each task's prefix (tasks/{taskId}/result.json), nothing else of the bucket."
    ),
    "AwsSolutions-IAM5[Resource::<StorageResultsBucketF87BB70E.Arn>/tasks/*/result-body.json]": (
        "The result function presigns a large result's body for its owner: one key name under each task's prefix "
        "(tasks/{taskId}/result-body.json), nothing else of the bucket."
    ),
    "AwsSolutions-IAM5[Resource::<FunctionsValidateTaskFunction9F7EDADE.Arn>:*]": (
        "Invoke on the function's versions and aliases (CDK's LambdaInvoke grant); one function only."
    ),
    "AwsSolutions-IAM5[Resource::<FunctionsProcessTaskFunctionFF37817D.Arn>:*]": (
        "Invoke on the function's versions and aliases (CDK's LambdaInvoke grant); one function only."
    ),
    "AwsSolutions-IAM5[Resource::<FunctionsTaskChangesFunction2CFB5830.Arn>:*]": (
        "The task-changes pipe may invoke the function's versions and aliases; one function only."
    ),
    "AwsSolutions-IAM5[Resource::<FunctionsReconcileTasksFunction02A7154F.Arn>:*]": (
        "Invoke on the function's versions and aliases (CDK's LambdaInvoke grant, reconciler workflow); one function only."
    ),
    "AwsSolutions-L1": "python3.13 is the newest runtime the Powertools layer (and its SSM parameter) is published for.",
    "AwsSolutions-COG4": "The API uses IAM (SigV4) authorisation: the caller's IAM identity is the task owner.",
    "AwsSolutions-APIG3": "WAF is an account-level decision; the stage has throttling and IAM auth (docs/DECISIONS.md).",
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]": (
        "The account-wide role API Gateway requires to write execution logs; its managed policy is the documented one."
    ),
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSCodeDeployRoleForLambdaLimited]": (
        "CodeDeploy's documented service-role policy for Lambda canaries (docs/DEPLOY.md), the Limited variant: "
        "GetAlias/UpdateAlias, DescribeAlarms, and invoking only hooks named CodeDeployHook_*."
    ),
    "AwsSolutions-SQS3": "These queues are dead-letter queues (and an archive) themselves, drained by operators.",
    "AwsSolutions-SF1": (
        "The STANDARD task lifecycle and failure recorder log ERROR events: Step Functions keeps each execution's full "
        "history for 90 days, and ALL events would only duplicate it in CloudWatch Logs at $0.50/GB "
        "(docs/COST.md, Logging). The reconciler and an EXPRESS lifecycle log ALL."
    ),
}


LIFECYCLE_EXECUTIONS_REASON = (
    "StopExecution/DescribeExecution on executions of the one task-lifecycle state machine only."
)
# The state machine's name as CDK's grant_execution derives it from its ARN (the 7th ``:`` field).
LIFECYCLE_STATE_MACHINE_NAME = (
    '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"WorkflowTaskLifecycleStateMachineC82282C9"}]}]}'
)


def _arn_field(value: str, pseudo_parameter: str) -> str:
    """How cdk-nag spells an ARN field in a finding: ``<AWS::Region>`` while it is the pseudo parameter, the
    literal when the stack's environment fixed it (the CDK CLI sets CDK_DEFAULT_REGION/CDK_DEFAULT_ACCOUNT)."""
    return f"<{pseudo_parameter}>" if Token.is_unresolved(value) else value


def environment_acknowledgements(stack: Stack) -> dict[str, str]:
    """Findings whose text embeds the stack's partition, region and account, spelled for this stack's env."""
    partition = _arn_field(stack.partition, "AWS::Partition")
    region = _arn_field(stack.region, "AWS::Region")
    account = _arn_field(stack.account, "AWS::AccountId")
    executions = f"arn:{partition}:states:{region}:{account}:execution:{LIFECYCLE_STATE_MACHINE_NAME}:*"
    return {f"AwsSolutions-IAM5[Resource::{executions}]": LIFECYCLE_EXECUTIONS_REASON}


def acknowledgements(stack: Stack) -> dict[str, str]:
    return {**ACKNOWLEDGEMENTS, **environment_acknowledgements(stack)}


def apply_suppressions(stack: Stack) -> None:
    for rule_id, reason in acknowledgements(stack).items():
        Validations.of(stack).acknowledge(Acknowledgment(id=f"AwsSolutions::{rule_id}", reason=reason))
