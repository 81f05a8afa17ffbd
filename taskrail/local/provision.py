"""Provisions the local AWS services from the synthesized template: never from a hand-kept copy.

moto's CloudFormation does not implement every type CDK emits (Pipes, some properties), so this reads the
template and calls the service APIs itself, resource by resource. State machines come from ``asl/`` with
the placeholders filled with local values. Functions are registered in moto (so ``lambda:invoke`` finds
them) and described by :class:`FunctionSpec` for the process that really runs them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from taskrail.local import aliases, control_plane, websocket_api
from taskrail.local.functions import FunctionSpec
from taskrail.local.pipes import PipeSpec
from taskrail.local.region import ACCOUNT_ID, PARTITION, PSEUDO, REGION, arn
from taskrail.local.scheduler import ScheduleSpec
from taskrail.local.services import logs_subscriptions
from taskrail.local.services.lambda_ import create_stub_function
from workflows.asl import (
    asl_file,
    construct_name,
    placeholder_tokens,
    state_machine_type,
    substitute,
    workflow_file_name,
)


@dataclass
class LocalResources:
    """Physical values of every provisioned resource, by logical id and by construct name."""

    stack_name: str
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)  # logical id → {"Ref", "Arn", ...}
    names: dict[str, str] = field(default_factory=dict)  # construct name → logical id
    functions: dict[str, FunctionSpec] = field(default_factory=dict)  # construct name → spec
    pipes: dict[str, PipeSpec] = field(default_factory=dict)
    state_machines: dict[str, str] = field(default_factory=dict)  # construct name → ARN
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)  # construct name → spec

    def ref(self, construct: str) -> str:
        return self.attributes[self.names[construct]]["Ref"]

    def attr(self, construct: str, attribute: str) -> str:
        return self.attributes[self.names[construct]][attribute]


class Resolver:
    """Resolves the CloudFormation intrinsics CDK emits (Ref, GetAtt, Join, Select, Split, Sub)."""

    def __init__(self, resources: LocalResources) -> None:
        self._resources = resources

    def __call__(self, value: Any) -> Any:  # noqa: PLR0911 - one branch per intrinsic
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self(v) for k, v in value.items()}
        ((key, arg),) = value.items()
        if key == "Ref":
            return PSEUDO.get(arg) or self._attribute(arg, "Ref")
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self._attribute(logical_id, attribute)
        if key == "Fn::Join":
            separator, parts = arg
            return separator.join(str(self(p)) for p in self(parts))
        if key == "Fn::Select":
            index, items = arg
            return self(items)[int(index)]
        if key == "Fn::Split":
            separator, text = arg
            return str(self(text)).split(separator)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            variables = {k: self(v) for k, v in variables.items()}
            return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1), variables), text)
        return {k: self(v) for k, v in value.items()}

    def _sub(self, name: str, variables: dict[str, Any]) -> str:
        if name in variables:
            return str(variables[name])
        if name in PSEUDO:
            return PSEUDO[name]
        logical_id, _, attribute = name.partition(".")
        return self._attribute(logical_id, attribute or "Ref")

    def _attribute(self, logical_id: str, attribute: str) -> str:
        try:
            return self._resources.attributes[logical_id][attribute]
        except KeyError:
            raise KeyError(f"{logical_id}.{attribute} is not provisioned locally") from None


Clients = Callable[[str], Any]  # service name → boto3 client


class Provisioner:
    """Creates each resource of the template in the local services, by type: see :data:`PROVISIONERS`."""

    def __init__(self, template: dict[str, Any], clients: Clients, *, stack_name: str, cdk_out: str) -> None:
        self._template = template
        self.clients = clients
        self._cdk_out = cdk_out
        self.resources = LocalResources(stack_name=stack_name)
        self.resolve = Resolver(self.resources)
        self._role_arn = ""

    @property
    def template(self) -> dict[str, Any]:
        return self._template

    def _of_type(self, resource_type: str) -> list[tuple[str, dict[str, Any]]]:
        return [(k, v) for k, v in self._template["Resources"].items() if v["Type"] == resource_type]

    def construct(self, logical_id: str) -> str:
        """The resource's construct name (recorded, so ``resources.ref(construct)`` finds it)."""
        construct = construct_name(self._template, logical_id)
        self.resources.names[construct] = logical_id
        return construct

    def name(self, logical_id: str, *, lower: bool = False) -> str:
        """The resource's physical name: ``<stack>-<construct name>``."""
        name = f"{self.resources.stack_name}-{self.construct(logical_id)}"
        return name.lower() if lower else name

    def provision(self) -> LocalResources:
        for resource_type, provision_one in PROVISIONERS:
            for logical_id, resource in self._of_type(resource_type):
                provision_one(self, logical_id, resource)
        return self.resources

    def role(self, logical_id: str, _resource: dict[str, Any]) -> None:
        """Each role by its logical id (construct names repeat: every state machine's role is "Role"), so each
        principal has its own role, as the generated names on AWS are unique (IAM enforcement: taskrail/local/iam)."""
        self.construct(logical_id)
        name = f"{self.resources.stack_name}-{logical_id}"[:64]
        self.resources.attributes[logical_id] = {"Ref": name, "Arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}"}

    def table(self, logical_id: str, resource: dict[str, Any]) -> None:
        client = self.clients("dynamodb")
        props, name = resource["Properties"], self.name(logical_id)
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in props:
            request["GlobalSecondaryIndexes"] = [
                {k: gsi[k] for k in ("IndexName", "KeySchema", "Projection")} for gsi in props["GlobalSecondaryIndexes"]
            ]
        if "StreamSpecification" in props:
            request["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        description = client.create_table(**request)["TableDescription"]
        if "TimeToLiveSpecification" in props:
            client.update_time_to_live(TableName=name, TimeToLiveSpecification=props["TimeToLiveSpecification"])
        self.resources.attributes[logical_id] = {
            "Ref": name,
            "Arn": description["TableArn"],
            "StreamArn": description.get("LatestStreamArn", ""),
        }

    def bucket(self, logical_id: str, resource: dict[str, Any]) -> None:
        client = self.clients("s3")
        name = self.name(logical_id, lower=True)
        client.create_bucket(Bucket=name)
        if resource["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled":
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        self.resources.attributes[logical_id] = {
            "Ref": name,
            "Arn": f"arn:{PARTITION}:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
        }

    def queue(self, logical_id: str, _resource: dict[str, Any]) -> None:
        name = self.name(logical_id)
        url = self.clients("sqs").create_queue(QueueName=name)["QueueUrl"]
        self.resources.attributes[logical_id] = {
            "Ref": url,
            "Arn": arn("sqs", name),
            "QueueName": name,
            "QueueUrl": url,
        }

    def topic(self, logical_id: str, _resource: dict[str, Any]) -> None:
        name = self.name(logical_id)
        topic_arn = self.clients("sns").create_topic(Name=name)["TopicArn"]
        self.resources.attributes[logical_id] = {"Ref": topic_arn, "TopicArn": topic_arn, "TopicName": name}

    def subscription(self, _logical_id: str, resource: dict[str, Any]) -> None:
        props = self.resolve(resource["Properties"])
        attributes = {"RawMessageDelivery": "true"} if props.get("RawMessageDelivery") else {}
        for name in ("RedrivePolicy", "FilterPolicy"):  # SNS takes them as JSON strings
            if props.get(name) is not None:
                attributes[name] = json.dumps(props[name]) if not isinstance(props[name], str) else props[name]
        self.clients("sns").subscribe(
            TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"], Attributes=attributes
        )

    def rule(self, logical_id: str, resource: dict[str, Any]) -> None:
        client = self.clients("events")
        props = self.resolve(resource["Properties"])
        name = self.name(logical_id)
        bus = props.get("EventBusName", "default")
        rule_arn = client.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps(props["EventPattern"]),
            State=props.get("State", "ENABLED"),
        )["RuleArn"]
        allowed = {"Id", "Arn", "RoleArn", "Input", "InputPath", "InputTransformer", "DeadLetterConfig", "RetryPolicy"}
        client.put_targets(
            Rule=name,
            EventBusName=bus,
            Targets=[{k: v for k, v in target.items() if k in allowed} for target in props.get("Targets", [])],
        )
        self.resources.attributes[logical_id] = {"Ref": name, "Arn": rule_arn}

    def event_bus(self, logical_id: str, _resource: dict[str, Any]) -> None:
        name = self.name(logical_id)
        bus_arn = self.clients("events").create_event_bus(Name=name)["EventBusArn"]
        self.resources.attributes[logical_id] = {"Ref": name, "Arn": bus_arn, "Name": name}

    def _execution_role(self) -> str:
        if not self._role_arn:
            iam = self.clients("iam")
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
            name = f"{self.resources.stack_name}-local-execution"
            self._role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        return self._role_arn

    def function(self, logical_id: str, _resource: dict[str, Any]) -> None:
        """Registered in moto, so that ``lambda:invoke`` finds it; :meth:`function_spec` says what really runs."""
        name = self.name(logical_id)
        self._execution_role()
        function_arn = create_stub_function(
            self.clients("lambda"),
            self.clients("iam"),
            name,
            role_name=f"{self.resources.stack_name}-local-execution",
        )
        self.resources.attributes[logical_id] = {"Ref": name, "Arn": function_arn}

    def function_spec(self, logical_id: str, resource: dict[str, Any]) -> None:
        construct = self.construct(logical_id)
        self.resources.functions[construct] = FunctionSpec.from_template(
            logical_id, resource, self.resolve, cdk_out=self._cdk_out
        )

    def state_machine(self, logical_id: str, resource: dict[str, Any]) -> None:
        name = self.name(logical_id)
        construct = construct_name(self._template, logical_id)
        values = {p: str(self.resolve(token)) for p, token in placeholder_tokens(self._template, logical_id).items()}
        kind = state_machine_type(self._template, logical_id)
        definition = substitute(asl_file(workflow_file_name(construct), kind).read_text(), values)
        machine_arn = self.clients("stepfunctions").create_state_machine(
            name=name,
            definition=definition,
            roleArn=str(self.resolve(resource["Properties"]["RoleArn"])),
            type=kind,
            **_logging_configuration(self.resolve(resource["Properties"].get("LoggingConfiguration"))),
        )["stateMachineArn"]  # its own role: the interpreter's service calls are signed as it (taskrail/local/iam)
        self.resources.attributes[logical_id] = {"Ref": machine_arn, "Arn": machine_arn, "Name": name}
        self.resources.state_machines[construct] = machine_arn

    def pipe(self, logical_id: str, resource: dict[str, Any]) -> None:
        """Pipes are run by ``taskrail.local.pipes``; this records what each one reads and starts."""
        construct = self.construct(logical_id)
        self.resources.pipes[construct] = PipeSpec.from_template(construct, logical_id, resource, self.resolve)

    def schedule(self, logical_id: str, resource: dict[str, Any]) -> None:
        """Schedules are driven by ``taskrail.local.scheduler``; this records what each one starts."""
        construct, name = self.construct(logical_id), self.name(logical_id)
        group = self.resolve(resource["Properties"]).get("GroupName", "default")
        # control_plane.schedule created it in moto already (same name and ARN)
        self.resources.attributes.setdefault(
            logical_id, {"Ref": name, "Arn": arn("scheduler", f"schedule/{group}/{name}")}
        )
        self.resources.schedules[construct] = ScheduleSpec.from_template(logical_id, resource, self.resolve)


def _logging_configuration(resolved: Any) -> dict[str, Any]:
    """CloudFormation's LoggingConfiguration as CreateStateMachine takes it (its executions log there: the local
    Step Functions delivers them, services/stepfunctions_express.py)."""
    if not resolved:
        return {}
    destinations = [
        {"cloudWatchLogsLogGroup": {"logGroupArn": str(d["CloudWatchLogsLogGroup"]["LogGroupArn"])}}
        for d in resolved.get("Destinations", [])
    ]
    level, data = resolved.get("Level", "OFF"), bool(resolved.get("IncludeExecutionData", False))
    return {"loggingConfiguration": {"level": level, "includeExecutionData": data, "destinations": destinations}}


ProvisionOne = Callable[[Provisioner, str, dict[str, Any]], None]

#: Resource type → how one resource of it is provisioned, in this order (a resource is provisioned after
#: everything it references). Emulating one more resource type is one line here.
PROVISIONERS: Final[tuple[tuple[str, ProvisionOne], ...]] = (
    ("AWS::IAM::Role", Provisioner.role),
    ("AWS::Logs::LogGroup", control_plane.log_group),
    ("AWS::DynamoDB::Table", Provisioner.table),
    ("AWS::S3::Bucket", Provisioner.bucket),
    ("AWS::SQS::Queue", Provisioner.queue),
    ("AWS::SNS::Topic", Provisioner.topic),
    ("AWS::Events::EventBus", Provisioner.event_bus),
    ("AWS::Lambda::Function", Provisioner.function),
    # The WebSocket API (taskrail/local/websocket_api.py) before the functions' environments, which name its URL.
    ("AWS::ApiGatewayV2::Api", websocket_api.provision),
    # A second pass: environments reference tables, buckets and each other, so every function is named first.
    # State machines come after it: a function's environment never names one (docs/DECISIONS.md).
    ("AWS::Lambda::Function", Provisioner.function_spec),
    # Every caller names an alias (taskrail/local/aliases.py); a definition may name another machine's alias.
    ("AWS::Lambda::Version", aliases.lambda_version),
    ("AWS::Lambda::Alias", aliases.lambda_alias),
    ("AWS::StepFunctions::StateMachineAlias", aliases.reserve_state_machine_alias),
    ("AWS::StepFunctions::StateMachine", Provisioner.state_machine),
    ("AWS::StepFunctions::StateMachineVersion", aliases.state_machine_version),
    ("AWS::StepFunctions::StateMachineAlias", aliases.state_machine_alias),
    ("AWS::SNS::Subscription", Provisioner.subscription),
    # A log group's subscription to a function's alias (taskrail/local/services/logs_subscriptions.py).
    ("AWS::Logs::SubscriptionFilter", logs_subscriptions.provision),
    ("AWS::Events::Rule", Provisioner.rule),
    # The control plane (taskrail/local/control_plane.py): in moto, so the AWS CLI lists what the template defines.
    ("AWS::Pipes::Pipe", control_plane.pipe),
    ("AWS::Pipes::Pipe", Provisioner.pipe),
    ("AWS::Scheduler::Schedule", control_plane.schedule),
    ("AWS::Scheduler::Schedule", Provisioner.schedule),
    ("AWS::CloudWatch::Alarm", control_plane.alarm),
    ("AWS::CloudWatch::Dashboard", control_plane.dashboard),
    ("AWS::ApiGateway::RestApi", control_plane.rest_api),
)


def provision(
    template: dict[str, Any], clients: Clients, *, stack_name: str, cdk_out: str
) -> tuple[LocalResources, Resolver]:
    provisioner = Provisioner(template, clients, stack_name=stack_name, cdk_out=cdk_out)
    return provisioner.provision(), provisioner.resolve
