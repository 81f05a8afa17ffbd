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
from typing import Any

from workflows.asl import asl_file, construct_name, placeholder_tokens, substitute, workflow_file_name

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::URLSuffix": "amazonaws.com",
}


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    handler: str
    timeout_seconds: int
    memory_mb: int
    environment: dict[str, str]
    code_path: str


@dataclass
class PipeSpec:
    logical_id: str
    name: str
    source_stream_arn: str
    filters: list[dict[str, Any]]
    target_arn: str
    target_kind: str  # "stepfunctions" | "lambda"
    input_template: str | None
    batch_size: int
    dead_letter_queue_arn: str | None
    maximum_retry_attempts: int


RATE_EXPRESSION = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass
class ScheduleSpec:
    """An ``AWS::Scheduler::Schedule``: what to start, with which input, how often, and where failures go."""

    logical_id: str
    name: str
    arn: str
    expression: str
    target_arn: str
    input: str | None
    role_arn: str
    dead_letter_queue_arn: str | None
    maximum_retry_attempts: int
    maximum_event_age_seconds: int
    enabled: bool

    @property
    def rate_seconds(self) -> int | None:
        """The period of a ``rate(...)`` expression; None for ``cron(...)`` and ``at(...)``."""
        match = RATE_EXPRESSION.match(self.expression.strip())
        if match is None:
            return None
        return int(match.group(1)) * RATE_UNIT_SECONDS[match.group(2).removesuffix("s")]


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
    def __init__(self, template: dict[str, Any], clients: Clients, *, stack_name: str, cdk_out: str) -> None:
        self._template = template
        self._clients = clients
        self._cdk_out = cdk_out
        self.resources = LocalResources(stack_name=stack_name)
        self.resolve = Resolver(self.resources)
        self._role_arn = ""

    def _of_type(self, resource_type: str) -> list[tuple[str, dict[str, Any]]]:
        return [(k, v) for k, v in self._template["Resources"].items() if v["Type"] == resource_type]

    def _name(self, logical_id: str, *, lower: bool = False) -> str:
        construct = construct_name(self._template, logical_id)
        self.resources.names[construct] = logical_id
        name = f"{self.resources.stack_name}-{construct}"
        return name.lower() if lower else name

    def _arn(self, service: str, resource: str) -> str:
        return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT_ID}:{resource}"

    def provision(self) -> LocalResources:
        self._roles()
        self._tables()
        self._buckets()
        self._queues()
        self._topics()
        self._event_buses()
        self._functions()
        self._state_machines()
        self._subscriptions()
        self._rules()
        self._pipes()
        self._schedules()
        return self.resources

    def _roles(self) -> None:
        """Roles are not enforced locally, but other resources name their ARNs."""
        for logical_id, _ in self._of_type("AWS::IAM::Role"):
            name = self._name(logical_id)
            self.resources.attributes[logical_id] = {
                "Ref": name,
                "Arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}",
            }

    def _tables(self) -> None:
        client = self._clients("dynamodb")
        for logical_id, resource in self._of_type("AWS::DynamoDB::Table"):
            props, name = resource["Properties"], self._name(logical_id)
            request: dict[str, Any] = {
                "TableName": name,
                "KeySchema": props["KeySchema"],
                "AttributeDefinitions": props["AttributeDefinitions"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if "GlobalSecondaryIndexes" in props:
                request["GlobalSecondaryIndexes"] = [
                    {k: gsi[k] for k in ("IndexName", "KeySchema", "Projection")}
                    for gsi in props["GlobalSecondaryIndexes"]
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

    def _buckets(self) -> None:
        client = self._clients("s3")
        for logical_id, resource in self._of_type("AWS::S3::Bucket"):
            name = self._name(logical_id, lower=True)
            client.create_bucket(Bucket=name)
            if resource["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled":
                client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            self.resources.attributes[logical_id] = {
                "Ref": name,
                "Arn": f"arn:{PARTITION}:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
            }

    def _queues(self) -> None:
        client = self._clients("sqs")
        for logical_id, _ in self._of_type("AWS::SQS::Queue"):
            name = self._name(logical_id)
            url = client.create_queue(QueueName=name)["QueueUrl"]
            arn = self._arn("sqs", name)
            self.resources.attributes[logical_id] = {
                "Ref": url,
                "Arn": arn,
                "QueueName": name,
                "QueueUrl": url,
            }

    def _topics(self) -> None:
        client = self._clients("sns")
        for logical_id, _ in self._of_type("AWS::SNS::Topic"):
            name = self._name(logical_id)
            arn = client.create_topic(Name=name)["TopicArn"]
            self.resources.attributes[logical_id] = {"Ref": arn, "TopicArn": arn, "TopicName": name}

    def _subscriptions(self) -> None:
        client = self._clients("sns")
        for _, resource in self._of_type("AWS::SNS::Subscription"):
            props = self.resolve(resource["Properties"])
            attributes = {"RawMessageDelivery": "true"} if props.get("RawMessageDelivery") else {}
            client.subscribe(
                TopicArn=props["TopicArn"],
                Protocol=props["Protocol"],
                Endpoint=props["Endpoint"],
                Attributes=attributes,
            )

    def _rules(self) -> None:
        client = self._clients("events")
        for logical_id, resource in self._of_type("AWS::Events::Rule"):
            props = self.resolve(resource["Properties"])
            name = self._name(logical_id)
            bus = props.get("EventBusName", "default")
            arn = client.put_rule(
                Name=name,
                EventBusName=bus,
                EventPattern=json.dumps(props["EventPattern"]),
                State=props.get("State", "ENABLED"),
            )["RuleArn"]
            allowed = {"Id", "Arn", "Input", "InputPath", "InputTransformer", "DeadLetterConfig", "RetryPolicy"}
            client.put_targets(
                Rule=name,
                EventBusName=bus,
                Targets=[{k: v for k, v in target.items() if k in allowed} for target in props.get("Targets", [])],
            )
            self.resources.attributes[logical_id] = {"Ref": name, "Arn": arn}

    def _event_buses(self) -> None:
        client = self._clients("events")
        for logical_id, _ in self._of_type("AWS::Events::EventBus"):
            name = self._name(logical_id)
            arn = client.create_event_bus(Name=name)["EventBusArn"]
            self.resources.attributes[logical_id] = {"Ref": name, "Arn": arn, "Name": name}

    def _execution_role(self) -> str:
        if not self._role_arn:
            iam = self._clients("iam")
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
            name = f"{self.resources.stack_name}-local-execution"
            self._role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        return self._role_arn

    def _functions(self) -> None:
        from taskrail.local.moto_hooks import create_stub_function

        for logical_id, resource in self._of_type("AWS::Lambda::Function"):
            props, name = resource["Properties"], self._name(logical_id)
            self._execution_role()
            arn = create_stub_function(
                self._clients("lambda"),
                self._clients("iam"),
                name,
                role_name=f"{self.resources.stack_name}-local-execution",
            )
            self.resources.attributes[logical_id] = {"Ref": name, "Arn": arn}
        # Environments reference tables, buckets and each other: resolve once everything has a name.
        for logical_id, resource in self._of_type("AWS::Lambda::Function"):
            props = resource["Properties"]
            # The asset's staged folder in cdk.out: exactly what `cdk deploy` zips and uploads.
            asset = "asset." + str(props["Code"].get("S3Key", "")).removesuffix(".zip")
            construct = construct_name(self._template, logical_id)
            self.resources.functions[construct] = FunctionSpec(
                logical_id=logical_id,
                name=self.resources.attributes[logical_id]["Ref"],
                arn=self.resources.attributes[logical_id]["Arn"],
                handler=props["Handler"],
                timeout_seconds=int(props.get("Timeout", 3)),
                memory_mb=int(props.get("MemorySize", 128)),
                environment={
                    k: str(v) for k, v in self.resolve(props.get("Environment", {}).get("Variables", {})).items()
                },
                code_path=f"{self._cdk_out}/{asset}" if asset else "",
            )

    def _state_machines(self) -> None:
        client = self._clients("stepfunctions")
        for logical_id, _resource in self._of_type("AWS::StepFunctions::StateMachine"):
            name = self._name(logical_id)
            construct = construct_name(self._template, logical_id)
            values = {
                p: str(self.resolve(token)) for p, token in placeholder_tokens(self._template, logical_id).items()
            }
            definition = substitute(asl_file(workflow_file_name(construct)).read_text(), values)
            arn = client.create_state_machine(
                name=name, definition=definition, roleArn=self._execution_role(), type="STANDARD"
            )["stateMachineArn"]
            self.resources.attributes[logical_id] = {"Ref": arn, "Arn": arn, "Name": name}
            self.resources.state_machines[construct] = arn

    def _pipes(self) -> None:
        for logical_id, resource in self._of_type("AWS::Pipes::Pipe"):
            props = self.resolve(resource["Properties"])
            source = props.get("SourceParameters", {})
            stream = source.get("DynamoDBStreamParameters", {})
            target = props.get("TargetParameters", {})
            construct = construct_name(self._template, logical_id)
            self.resources.names[construct] = logical_id
            self.resources.pipes[construct] = PipeSpec(
                logical_id=logical_id,
                name=construct,
                source_stream_arn=props["Source"],
                filters=[json.loads(f["Pattern"]) for f in source.get("FilterCriteria", {}).get("Filters", [])],
                target_arn=props["Target"],
                target_kind="stepfunctions" if ":states:" in props["Target"] else "lambda",
                input_template=target.get("InputTemplate"),
                batch_size=int(stream.get("BatchSize", 1)),
                dead_letter_queue_arn=stream.get("DeadLetterConfig", {}).get("Arn"),
                maximum_retry_attempts=int(stream.get("MaximumRetryAttempts", 3)),
            )

    def _schedules(self) -> None:
        """Schedules are driven by ``taskrail.local.scheduler``; this records what each one starts."""
        for logical_id, resource in self._of_type("AWS::Scheduler::Schedule"):
            props = self.resolve(resource["Properties"])
            target = props["Target"]
            retry = target.get("RetryPolicy", {})
            construct = construct_name(self._template, logical_id)
            name = self._name(logical_id)
            arn = self._arn("scheduler", f"schedule/{props.get('GroupName', 'default')}/{name}")
            self.resources.attributes[logical_id] = {"Ref": name, "Arn": arn}
            self.resources.schedules[construct] = ScheduleSpec(
                logical_id=logical_id,
                name=name,
                arn=arn,
                expression=props["ScheduleExpression"],
                target_arn=target["Arn"],
                input=target.get("Input"),
                role_arn=target["RoleArn"],
                dead_letter_queue_arn=target.get("DeadLetterConfig", {}).get("Arn"),
                # EventBridge Scheduler's defaults when the retry policy leaves them out.
                maximum_retry_attempts=int(retry.get("MaximumRetryAttempts", 185)),
                maximum_event_age_seconds=int(retry.get("MaximumEventAgeInSeconds", 86400)),
                enabled=props.get("State", "ENABLED") == "ENABLED",
            )


def provision(
    template: dict[str, Any], clients: Clients, *, stack_name: str, cdk_out: str
) -> tuple[LocalResources, Resolver]:
    provisioner = Provisioner(template, clients, stack_name=stack_name, cdk_out=cdk_out)
    return provisioner.provision(), provisioner.resolve
