"""Versions and aliases from the template: what every caller names (docs/DEPLOY.md).

Each function of the template has an ``AWS::Lambda::Version`` (CDK's ``currentVersion``) and an
``AWS::Lambda::Alias`` on it; the lifecycle state machine has an ``AWS::StepFunctions::StateMachineVersion`` and an
``AWS::StepFunctions::StateMachineAlias``. Each function here is one line of ``provision.PROVISIONERS``: it publishes
the version in moto and creates the alias there, so a qualified Invoke or StartExecution finds what the alias points
to, as on AWS. On its first deploy an alias with a deployment preference routes all executions to its version
("AWS::StepFunctions::StateMachineAlias", CloudFormation User Guide); locally the stack is always a first deploy, so
the alias points at the one version the template's definition publishes. The CodeDeploy application and deployment
groups have nothing to run locally: no deployment happens here.

A state machine's definition may name another machine's alias (the reconciler starts the lifecycle through it), and
definitions are provisioned before versions: :func:`reserve_state_machine_alias` records the alias's ARN, which AWS
forms as ``<state machine ARN>:<alias name>``, before any definition is filled in, and
:func:`state_machine_alias` checks that moto gave the alias that ARN.
"""

from __future__ import annotations

from typing import Any, Protocol

from taskrail.local.region import arn


class Provisioner(Protocol):
    """What of ``provision.Provisioner`` these functions use (provision imports this module, not the reverse)."""

    resources: Any
    resolve: Any
    clients: Any

    @property
    def template(self) -> dict[str, Any]: ...

    def name(self, logical_id: str, *, lower: bool = False) -> str: ...

    def construct(self, logical_id: str) -> str: ...


def _referenced(token: Any) -> str:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` names."""
    if isinstance(token, dict) and "Ref" in token:
        return str(token["Ref"])
    if isinstance(token, dict) and "Fn::GetAtt" in token:
        target = token["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".", 1)[0])
    raise ValueError(f"expected a Ref or Fn::GetAtt, got {token!r}")


def lambda_version(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    props = provisioner.resolve(resource["Properties"])
    published = provisioner.clients("lambda").publish_version(FunctionName=props["FunctionName"])
    provisioner.resources.attributes[logical_id] = {
        "Ref": published["FunctionArn"],
        "Version": published["Version"],
        "FunctionArn": published["FunctionArn"],
    }


def lambda_alias(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    props = provisioner.resolve(resource["Properties"])
    provisioner.construct(logical_id)
    alias_arn = provisioner.clients("lambda").create_alias(
        FunctionName=props["FunctionName"], Name=props["Name"], FunctionVersion=str(props["FunctionVersion"])
    )["AliasArn"]
    provisioner.resources.attributes[logical_id] = {"Ref": alias_arn, "AliasArn": alias_arn}


def _alias_version_token(props: dict[str, Any]) -> Any:
    if props.get("DeploymentPreference"):
        return props["DeploymentPreference"]["StateMachineVersionArn"]
    return props["RoutingConfiguration"][0]["StateMachineVersionArn"]


def reserve_state_machine_alias(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    props = resource["Properties"]
    version = provisioner.template["Resources"][_referenced(_alias_version_token(props))]
    machine_logical_id = _referenced(version["Properties"]["StateMachineArn"])
    machine_arn = arn("states", f"stateMachine:{provisioner.name(machine_logical_id)}")
    provisioner.construct(logical_id)
    alias_arn = f"{machine_arn}:{props['Name']}"
    provisioner.resources.attributes[logical_id] = {"Ref": alias_arn, "Arn": alias_arn}


def state_machine_version(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    props = resource["Properties"]  # its StateMachineRevisionId only makes CloudFormation publish a new version
    client, machine_arn = provisioner.clients("stepfunctions"), provisioner.resolve(props["StateMachineArn"])
    # UpdateStateMachine with publish (the same definition): what stock moto has of PublishStateMachineVersion.
    version_arn = client.update_state_machine(
        stateMachineArn=machine_arn,
        definition=client.describe_state_machine(stateMachineArn=machine_arn)["definition"],
        publish=True,
        versionDescription=props.get("Description", ""),
    )["stateMachineVersionArn"]
    provisioner.resources.attributes[logical_id] = {"Ref": version_arn, "Arn": version_arn}


def state_machine_alias(provisioner: Provisioner, logical_id: str, resource: dict[str, Any]) -> None:
    # Not the deployment preference's alarms: those are provisioned later, and only a deploy reads them.
    props, resolve = resource["Properties"], provisioner.resolve
    if props.get("RoutingConfiguration"):
        routing = [
            {"stateMachineVersionArn": resolve(route["StateMachineVersionArn"]), "weight": int(route["Weight"])}
            for route in props["RoutingConfiguration"]
        ]
    else:  # a deployment preference: the first deploy routes everything to its version
        routing = [{"stateMachineVersionArn": resolve(_alias_version_token(props)), "weight": 100}]
    alias_arn = provisioner.clients("stepfunctions").create_state_machine_alias(
        name=props["Name"], description=props.get("Description", ""), routingConfiguration=routing
    )["stateMachineAliasArn"]
    reserved = provisioner.resources.attributes[logical_id]["Ref"]
    if alias_arn != reserved:
        raise RuntimeError(f"the alias {logical_id} is {alias_arn}, but definitions were given {reserved}")
