"""The synthesized template's policies, evaluated as AWS evaluates them, for every call each principal makes.

Each row is one call a principal of the stack makes on its normal path (the function's adapter, a state of the
workflow, the pipe poller, the scheduler, an API route's integration, a rule target's delivery, an alarm action).
The row must be allowed by the template as synthesized; then the statement that allowed it is dropped from a copy
of the template and the same call must be denied, with IAM's message naming principal, action and resource: every
grant listed is needed, and no other statement covers for it (mutation-style, per kind of principal).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from taskrail.local.iam.actions import Access, ApiCall
from taskrail.local.iam.enforce import Enforcer, LocalIam
from taskrail.local.iam.evaluate import Outcome, Principal, Request, denial_message, evaluate
from taskrail.local.iam.policies import TemplatePolicies
from taskrail.local.iam.principals import RoleCredential
from taskrail.local.iam.roles import StackRoles
from taskrail.local.provision import LocalResources, provision
from taskrail.local.region import ACCOUNT_ID, REGION
from taskrail.local.services.server import LOCAL_MOTO_CONFIG


@dataclass
class Stack:
    template: dict[str, Any]
    resources: LocalResources
    roles: StackRoles

    def arn(self, construct: str) -> str:
        return self.resources.attr(construct, "Arn")

    def function(self, construct: str) -> RoleCredential:
        return self.roles.functions[self.resources.functions[construct].name]

    def machine(self, construct: str) -> RoleCredential:
        return self.roles.state_machines[self.resources.state_machines[construct]]

    def execution(self, construct: str, name: str = "t1-0") -> str:
        return self.resources.state_machines[construct].replace(":stateMachine:", ":execution:") + f":{name}"

    def table(self) -> str:
        return self.arn("TasksTable")

    def bucket(self) -> str:
        return self.arn("ResultsBucket")


@pytest.fixture(scope="module")
def stack(template: dict[str, Any], template_path: Path) -> Iterator[Stack]:
    with mock_aws(config=LOCAL_MOTO_CONFIG):
        resources, _ = provision(
            template, lambda s: boto3.client(s, region_name=REGION), stack_name="taskrail",
            cdk_out=str(template_path.parent),
        )  # fmt: skip
        yield Stack(template, resources, StackRoles.from_template(template, resources))


@dataclass(frozen=True)
class Call:
    who: str  # the principal, for the test id
    credential: Callable[[Stack], RoleCredential | Principal]
    action: str
    resource: Callable[[Stack], str]  # the ARN the call addresses
    context: Callable[[Stack], dict[str, Any]] = lambda _: {}


def _service(name: str) -> Callable[[Stack], Principal]:
    return lambda _: Principal.for_service(name, ACCOUNT_ID)


def _key(stack: Stack) -> str:
    """The topics' key: not created locally (nothing encrypts), its policy kept under the ARN it would have."""
    policies = TemplatePolicies.from_template(stack.template, stack.resources)
    [key] = set(policies.keys.values())
    assert key.startswith(f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/")
    return key


def _alarm(_: Stack) -> dict[str, Any]:
    return {
        "aws:SourceArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT_ID}:alarm:DlqNotEmpty",
        "aws:SourceAccount": ACCOUNT_ID,
    }


LIFECYCLE, RECONCILER = "TaskLifecycleStateMachine", "ReconcilerStateMachine"
Who = Callable[[Stack], RoleCredential | Principal]
Arn = Callable[[Stack], str]


def machine(construct: str) -> Who:
    return lambda s: s.machine(construct)


def function(construct: str) -> Who:
    return lambda s: s.function(construct)


def pipe(construct: str) -> Who:
    return lambda s: s.roles.pipes[construct]


def schedule(construct: str) -> Who:
    return lambda s: s.roles.schedules[construct]


def rule_target(target: str) -> Who:
    return lambda s: s.roles.rule_targets[target]


def api(s: Stack) -> RoleCredential:
    return next(iter(s.roles.api_methods.values()))


def arn_of(construct: str, attribute: str = "Arn") -> Arn:
    return lambda s: s.resources.attr(construct, attribute)


def live_function_arn(construct: str) -> Arn:
    """What every caller invokes (canary deploys, docs/DEPLOY.md): the function's ``live`` alias; a qualified invoke
    is ``lambda:InvokeFunction`` on the alias ARN."""
    return lambda s: f"{s.resources.functions[construct].arn}:live"


def through_live_alias(_: Stack) -> dict[str, Any]:
    """A start through the lifecycle's ``live`` alias: authorized on the state machine's ARN with the qualifier in
    ``states:StateMachineQualifier`` ("Authorization for versions and aliases", Step Functions Developer Guide)."""
    return {"states:StateMachineQualifier": "live"}


def machine_arn(construct: str) -> Arn:
    return lambda s: s.resources.state_machines[construct]


def table_index(index: str) -> Arn:
    return lambda s: f"{s.table()}/index/{index}"


def key(path: str) -> Arn:
    return lambda s: f"{s.bucket()}/{path}"


def execution(s: Stack) -> str:
    return s.execution(LIFECYCLE)


def rule_delivery(s: Stack) -> dict[str, Any]:
    return {"aws:SourceArn": s.arn("TaskOutcomeToTopicRule"), "aws:SourceAccount": ACCOUNT_ID}


def topic_delivery(s: Stack) -> dict[str, Any]:
    return {"aws:SourceArn": s.resources.ref("NotificationsTopic"), "aws:SourceAccount": ACCOUNT_ID}


CALLS = [
    # the task lifecycle's service integrations, as the state machine's role
    Call("lifecycle", machine(LIFECYCLE), "dynamodb:UpdateItem", Stack.table),
    Call("lifecycle", machine(LIFECYCLE), "lambda:InvokeFunction", live_function_arn("ValidateTaskFunction")),
    Call("lifecycle", machine(LIFECYCLE), "lambda:InvokeFunction", live_function_arn("ProcessTaskFunction")),
    Call("lifecycle", machine(LIFECYCLE), "s3:PutObject", key("tasks/t1/result.json")),
    Call("reconciler", machine(RECONCILER), "lambda:InvokeFunction", live_function_arn("ReconcileTasksFunction")),
    # functions, as their execution roles
    Call("validate", function("ValidateTaskFunction"), "dynamodb:GetItem", Stack.table),
    Call("validate", function("ValidateTaskFunction"), "s3:GetObject", key("tasks/t1/input.json")),
    Call("process", function("ProcessTaskFunction"), "s3:GetObject", key("users/u1/data.csv")),
    Call("process", function("ProcessTaskFunction"), "dynamodb:UpdateItem", Stack.table),
    Call("process", function("ProcessTaskFunction"), "dynamodb:PutItem", arn_of("IdempotencyTable")),
    Call("process", function("ProcessTaskFunction"), "s3:PutObject", key("tasks/t1/part-1.json")),
    Call(
        "process",
        function("ProcessTaskFunction"),
        "s3:ListBucket",
        Stack.bucket,
        lambda _: {"s3:prefix": "diagnostics/x"},
    ),
    Call("task-changes", function("TaskChangesFunction"), "states:StopExecution", execution),
    Call("task-changes", function("TaskChangesFunction"), "states:DescribeExecution", execution),
    Call("task-changes", function("TaskChangesFunction"), "sqs:SendMessage", arn_of("TaskDeadLetterQueue")),
    Call("task-changes", function("TaskChangesFunction"), "events:PutEvents", arn_of("TaskEventBus")),
    Call("task-changes", function("TaskChangesFunction"), "dynamodb:UpdateItem", Stack.table),
    Call("task-changes", function("TaskChangesFunction"), "dynamodb:PutItem", arn_of("IdempotencyTable")),
    Call("reconcile", function("ReconcileTasksFunction"), "dynamodb:Query", table_index("pendingShard-createdAt")),
    Call(
        "reconcile",
        function("ReconcileTasksFunction"),
        "states:StartExecution",
        machine_arn(LIFECYCLE),
        through_live_alias,
    ),
    # pipes, as their roles
    Call("start-pipe", pipe("StartWorkflowPipe"), "dynamodb:GetRecords", arn_of("TasksTable", "StreamArn")),
    Call("start-pipe", pipe("StartWorkflowPipe"), "states:StartExecution", machine_arn(LIFECYCLE), through_live_alias),
    Call("start-pipe", pipe("StartWorkflowPipe"), "sqs:SendMessage", arn_of("PipeDeadLetterQueue")),
    Call(
        "task-changes-pipe", pipe("TaskChangesPipe"), "lambda:InvokeFunction", live_function_arn("TaskChangesFunction")
    ),
    # the schedule, as its role
    Call("schedule", schedule("ReconcileSchedule"), "states:StartExecution", machine_arn(RECONCILER)),
    Call("schedule", schedule("ReconcileSchedule"), "sqs:SendMessage", arn_of("ScheduleDeadLetterQueue")),
    # API integrations, as their credentials role
    Call("api", api, "dynamodb:UpdateItem", Stack.table),  # POST /tasks (submit) and DELETE (cancel)
    Call("api", api, "dynamodb:Query", table_index("userId-createdAt-v2")),
    # the failure rule's target starts the recorder with the target's role (EventBridge assumes it)
    Call(
        "rule-target-role",
        rule_target("LifecycleFailedRule/Target0"),
        "states:StartExecution",
        machine_arn("FailureRecorderStateMachine"),
    ),
    # rule target and alarm action deliveries, as their service principals, against the resource policies
    Call(
        "rule-target",
        _service("events.amazonaws.com"),
        "sns:Publish",
        arn_of("NotificationsTopic", "Ref"),
        rule_delivery,
    ),
    Call("rule-target", _service("events.amazonaws.com"), "kms:GenerateDataKey", _key),
    Call(
        "subscription",
        _service("sns.amazonaws.com"),
        "sqs:SendMessage",
        arn_of("NotificationsArchiveQueue"),
        topic_delivery,
    ),
    Call("alarm-action", _service("cloudwatch.amazonaws.com"), "sns:Publish", arn_of("AlarmTopic", "Ref"), _alarm),
    Call("alarm-action", _service("cloudwatch.amazonaws.com"), "kms:GenerateDataKey", _key, _alarm),
]


def decide(stack: Stack, call: Call, template: dict[str, Any]) -> tuple[Request, Any]:
    policies = TemplatePolicies.from_template(template, stack.resources)
    who = call.credential(stack)
    resource = call.resource(stack)
    if isinstance(who, RoleCredential):
        enforcer = Enforcer(policies)
        denied = enforcer.check(who, ApiCall("test", "test", (Access(call.action, resource),), call.context(stack)))
        record = enforcer.log.records[-1]
        return Request(Principal(who.arn, ACCOUNT_ID, who.role_arn), call.action, resource), (denied, record)
    request = Request(who, call.action, resource, {"aws:SecureTransport": True, **call.context(stack)})
    return request, evaluate(request, [], policies.resource_policies(resource))


def _drop(template: dict[str, Any], policy: str, index: int) -> dict[str, Any]:
    mutated = copy.deepcopy(template)
    props = mutated["Resources"][policy]["Properties"]
    document = props.get("PolicyDocument") or props["KeyPolicy"]
    del document["Statement"][index]
    return mutated


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"{c.who}-{c.action}")
def test_the_template_allows_the_call_and_dropping_its_grant_denies_it(stack: Stack, call: Call) -> None:
    request, outcome = decide(stack, call, stack.template)
    if isinstance(outcome, tuple):  # a role: through the endpoint's enforcer
        denied, record = outcome
        assert denied is None, denied.message
        policy, _, index = record.decided_by.partition("[")
        statement = int(index.split("]", 1)[0])
    else:
        assert outcome.allowed, denial_message(request, outcome)
        policy, statement = str(outcome.policy), int(outcome.statement)
    mutated = _drop(stack.template, policy, statement)
    request, outcome = decide(stack, call, mutated)
    if isinstance(outcome, tuple):
        denied, _ = outcome
        assert denied is not None, f"still allowed without {policy}[{statement}]"
        assert denied.message == (
            f"User: {request.principal.arn} is not authorized to perform: {call.action} on resource: "
            f"{request.resource} because no identity-based policy allows the {call.action} action"
        )
        print(f"{call.who}: without {policy}[{statement}]: {denied.message}")
    else:
        assert outcome.outcome is Outcome.IMPLICIT_DENY, f"still allowed without {policy}[{statement}]"
        print(f"{call.who}: without {policy}[{statement}]: {denial_message(request, outcome)}")


def test_each_principal_has_its_own_role(stack: Stack) -> None:
    # Two state machines sharing one role would each hold the other's grants: least privilege per machine.
    machine_roles = [c.role_arn for c in stack.roles.state_machines.values()]
    assert len(set(machine_roles)) == len(machine_roles) == 3, machine_roles  # lifecycle, reconciler, recorder
    # the failure rule's target starts the recorder with a role of its own (not the recorder's)
    [(target, credential)] = stack.roles.rule_targets.items()
    assert target == "LifecycleFailedRule/Target0"
    assert credential.role_arn.split("/")[-1].startswith("taskrail-WorkflowFailureRuleRole")
    assert credential.role_arn not in machine_roles
    roles = {c.role_arn for c in stack.roles.by_role().values()}
    assert len(roles) == len(stack.roles.functions) + 3 + len(stack.roles.pipes) + 1 + 1 + 1


def test_a_session_of_a_role_is_denied_what_only_another_role_is_granted(stack: Stack) -> None:
    validate = stack.function("ValidateTaskFunction")
    enforcer = Enforcer(TemplatePolicies.from_template(stack.template, stack.resources))
    denied = enforcer.check(validate, ApiCall("dynamodb", "PutItem", (Access("dynamodb:PutItem", stack.table()),)))
    assert denied is not None
    assert f"assumed-role/{validate.role_arn.rsplit('/', 1)[1]}/{validate.session_name}" in denied.message


def test_the_tls_only_deny_of_the_template_holds_when_the_transport_is_clear(stack: Stack) -> None:
    # Local transport is evaluated as TLS (what the SDK uses on AWS); the Deny statements are real: with
    # aws:SecureTransport false the same, otherwise allowed, call is explicitly denied by the bucket policy.
    lifecycle = stack.machine(LIFECYCLE)
    call = ApiCall("s3", "PutObject", (Access("s3:PutObject", f"{stack.bucket()}/tasks/t1/result.json"),))
    policies = TemplatePolicies.from_template(stack.template, stack.resources)
    assert Enforcer(policies).check(lifecycle, call) is None
    denied = Enforcer(policies, secure_transport=False).check(lifecycle, call)
    assert denied is not None and denied.message.endswith("with an explicit deny in a resource-based policy")


def _request(target: str, body: dict[str, Any], access_key: str, service: str = "dynamodb") -> Any:
    from taskrail.local.guard import _WsgiRequest

    authorization = (
        f"AWS4-HMAC-SHA256 Credential={access_key}/20261201/{REGION}/{service}/aws4_request, SignedHeaders=host"
    )
    headers = [("host", "127.0.0.1:4566"), ("x-amz-target", target), ("authorization", authorization)]
    environ = {"HTTP_X_AMZ_TARGET": target, "HTTP_AUTHORIZATION": authorization}
    return environ, _WsgiRequest("POST", headers, json.dumps(body).encode(), "/", "")


def test_the_endpoint_answers_a_denied_role_request_as_dynamodb_does_and_logs_it(stack: Stack) -> None:
    iam = LocalIam()
    iam.load(stack.template, stack.resources)
    validate = stack.function("ValidateTaskFunction")
    environ, request = _request("DynamoDB_20120810.PutItem", {"TableName": stack.resources.ref("TasksTable")},
                                validate.access_key_id)  # fmt: skip
    answer = iam(validate, environ, request)
    assert answer is not None and answer.status == 400
    body = json.loads(answer.body)
    assert body["__type"].endswith("#AccessDeniedException")
    assert body["message"].startswith(f"User: {validate.arn} is not authorized to perform: dynamodb:PutItem")
    environ, request = _request("DynamoDB_20120810.GetItem", {"TableName": stack.resources.ref("TasksTable")},
                                validate.access_key_id)  # fmt: skip
    assert iam(validate, environ, request) is None
    assert [(r.action, r.allowed) for r in iam.log.records] == [("dynamodb:PutItem", False), ("dynamodb:GetItem", True)]


def test_the_interpreter_fixed_key_and_unmapped_requests_are_refused_while_enforcing(stack: Stack) -> None:
    from taskrail.local.users import MOTO_INTERPRETER

    iam = LocalIam()
    iam.load(stack.template, stack.resources)
    environ, request = _request("DynamoDB_20120810.GetItem", {"TableName": "t"}, MOTO_INTERPRETER.access_key_id)
    refused = iam(MOTO_INTERPRETER, environ, request)
    assert refused is not None and b"state machine's role" in refused.body
    validate = stack.function("ValidateTaskFunction")
    environ, request = _request("AWSSomething.DoIt", {}, validate.access_key_id, service="something")
    unmapped = iam(validate, environ, request)
    assert unmapped is not None and b"cannot map this request" in unmapped.body


def test_with_enforcement_off_decisions_are_logged_but_nothing_is_refused(stack: Stack) -> None:
    iam = LocalIam(enforce=False)
    iam.load(stack.template, stack.resources)
    validate = stack.function("ValidateTaskFunction")
    environ, request = _request("DynamoDB_20120810.PutItem", {"TableName": stack.resources.ref("TasksTable")},
                                validate.access_key_id)  # fmt: skip
    assert iam(validate, environ, request) is None
    assert [(r.action, r.allowed) for r in iam.log.records] == [("dynamodb:PutItem", False)]


def _role(name: str) -> dict[str, str]:
    return {"Ref": f"t-{name}", "Arn": f"arn:aws:iam::{ACCOUNT_ID}:role/t-{name}"}


#: The identity-policy forms the template's acting roles do not use today (they use AWS::IAM::Policy only): a
#: role's inline ``Policies``, a customer managed policy attached through ``ManagedPolicyArns`` and one that names
#: its roles in ``Roles``, and an AWS managed policy (no document in the template).
FORMS_TEMPLATE: dict[str, Any] = {
    "Resources": {
        "InlineRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Policies": [{
                    "PolicyName": "ReadTasks",
                    "PolicyDocument": {"Statement": [{
                        "Effect": "Allow", "Action": "dynamodb:GetItem",
                        "Resource": {"Fn::Sub": "arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/Tasks"},
                    }]},
                }],
                "ManagedPolicyArns": [
                    {"Ref": "SendPolicy"},
                    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
                ],
            },
        },
        "AttachedRole": {"Type": "AWS::IAM::Role", "Properties": {}},
        "SendPolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {"PolicyDocument": {"Statement": [{
                "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:dlq",
            }]}},
        },
        "PublishPolicy": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "Roles": [{"Ref": "AttachedRole"}],
                "PolicyDocument": {"Statement": [{
                    "Effect": "Allow", "Action": "sns:Publish", "Resource": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:t",
                }]},
            },
        },
    }
}  # fmt: skip


def test_inline_and_customer_managed_policies_grant_and_an_aws_managed_one_is_recorded_unresolved() -> None:
    local = LocalResources(
        stack_name="t", attributes={"InlineRole": _role("InlineRole"), "AttachedRole": _role("AttachedRole")}
    )
    policies = TemplatePolicies.from_template(FORMS_TEMPLATE, local)
    inline, attached = _role("InlineRole")["Arn"], _role("AttachedRole")["Arn"]
    table, queue = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/Tasks", f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:dlq"
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:t"

    def decided(role: str, action: str, resource: str) -> tuple[bool, str]:
        request = Request(Principal(f"{role}/s", ACCOUNT_ID, role_arn=role), action, resource, {})
        decision = evaluate(request, policies.identity_policies(role), policies.resource_policies(resource))
        return decision.allowed, decision.decided_by

    assert decided(inline, "dynamodb:GetItem", table) == (True, "InlineRole/ReadTasks[0]")  # inline Policies
    assert decided(inline, "sqs:SendMessage", queue) == (True, "SendPolicy[0]")  # ManagedPolicyArns -> Ref
    assert decided(attached, "sns:Publish", topic) == (True, "PublishPolicy[0]")  # ManagedPolicy Roles
    assert not decided(attached, "sqs:SendMessage", queue)[0]  # a managed policy grants only the roles it names
    assert not decided(inline, "sns:Publish", topic)[0]
    assert policies.unresolved == {
        inline: ["arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"]
    }
    assert {(g.policy, g.statement, g.actions) for g in policies.grants()} == {
        ("InlineRole/ReadTasks", 0, ("dynamodb:GetItem",)),
        ("SendPolicy", 0, ("sqs:SendMessage",)),
        ("PublishPolicy", 0, ("sns:Publish",)),
    }
    assert policies.grant_at("InlineRole/ReadTasks", 0) is not None  # an allowed decision finds its statement
