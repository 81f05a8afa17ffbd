"""Turns a synthesized state machine into ``asl/<name>.asl.json`` with named placeholders.

CDK emits a state machine's ``DefinitionString`` as an ``Fn::Join`` of literal strings and ``Ref`` /
``Fn::GetAtt`` tokens. Each token becomes ``${Name}``, where Name is the resource's construct id plus what the
token yields (``TasksTableName``, ``ProcessTaskFunctionArn``, ``TaskDeadLetterQueueUrl``, ``Partition``), the
same syntax as CloudFormation's ``DefinitionSubstitutions``. The local stack resolves the same placeholders
to local values through :func:`placeholder_tokens`.
"""

import json
import os
import re
from pathlib import Path
from typing import Any

# TASKRAIL_ASL_DIR points the local stack and the tests at another folder of definitions (a mutated copy, written by
# `make mutation`); unset, it is the committed asl/.
ASL_DIR = Path(os.environ.get("TASKRAIL_ASL_DIR") or Path(__file__).resolve().parents[1] / "asl")
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")

# What `Ref` yields for each resource type (CloudFormation documents one per type).
REF_SUFFIX = {
    "AWS::DynamoDB::Table": "Name",
    "AWS::S3::Bucket": "Name",
    "AWS::SNS::Topic": "Arn",
    "AWS::SQS::Queue": "Url",
    "AWS::Lambda::Function": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::StepFunctions::StateMachine": "Arn",
    # Every caller names an alias (docs/DEPLOY.md); Ref of an alias is its ARN.
    "AWS::Lambda::Alias": "Arn",
    "AWS::StepFunctions::StateMachineAlias": "Arn",
}
PSEUDO_PARAMETERS = {"AWS::Partition": "Partition", "AWS::Region": "Region", "AWS::AccountId": "AccountId"}


def construct_name(template: dict[str, Any], logical_id: str) -> str:
    """The construct id a person wrote (``TasksTable``), from the resource's ``aws:cdk:path``."""
    resource = template["Resources"][logical_id]
    path = resource.get("Metadata", {}).get("aws:cdk:path", logical_id)
    parts = [p for p in path.split("/") if p not in ("Resource", "Default")]
    return parts[-1]


def placeholder_for(template: dict[str, Any], token: dict[str, Any]) -> str:
    if "Ref" in token:
        target = token["Ref"]
        if target in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[target]
        resource_type = template["Resources"][target]["Type"]
        return construct_name(template, target) + REF_SUFFIX.get(resource_type, "Ref")
    if "Fn::GetAtt" in token:
        target, attribute = token["Fn::GetAtt"]
        return construct_name(template, target) + attribute.replace(".", "")
    raise ValueError(f"unsupported token in a state machine definition: {token}")


def state_machines(template: dict[str, Any]) -> dict[str, str]:
    """Logical id → construct name of every state machine in the template."""
    return {
        logical_id: construct_name(template, logical_id)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::StepFunctions::StateMachine"
    }


def _definition_parts(template: dict[str, Any], logical_id: str) -> list[Any]:
    definition = template["Resources"][logical_id]["Properties"]["DefinitionString"]
    if isinstance(definition, str):
        return [definition]
    _separator, parts = definition["Fn::Join"]
    return parts


def placeholder_tokens(template: dict[str, Any], logical_id: str) -> dict[str, dict[str, Any]]:
    """Placeholder name → the CloudFormation token it stands for."""
    return {
        placeholder_for(template, part): part
        for part in _definition_parts(template, logical_id)
        if not isinstance(part, str)
    }


def definition_with_placeholders(template: dict[str, Any], logical_id: str) -> str:
    text = "".join(
        part if isinstance(part, str) else "${" + placeholder_for(template, part) + "}"
        for part in _definition_parts(template, logical_id)
    )
    return json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


def substitute(asl: str, values: dict[str, str]) -> str:
    """Fills every placeholder; a placeholder without a value is an error, never left in place."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for placeholder ${{{name}}}; known: {', '.join(sorted(values))}")
        return json.dumps(values[name])[1:-1]

    return PLACEHOLDER.sub(value, asl)


def asl_file(workflow_name: str, state_machine_type: str = "STANDARD") -> Path:
    """``asl/task_lifecycle.asl.json``; an EXPRESS machine's definition differs (it records its own failures):
    ``asl/task_lifecycle.express.asl.json``."""
    variant = "" if state_machine_type == "STANDARD" else f".{state_machine_type.lower()}"
    return ASL_DIR / f"{workflow_name}{variant}.asl.json"


def state_machine_type(template: dict[str, Any], logical_id: str) -> str:
    return str(template["Resources"][logical_id]["Properties"].get("StateMachineType", "STANDARD"))


def workflow_file_name(construct: str) -> str:
    """``TaskLifecycleStateMachine`` → ``task_lifecycle``."""
    base = construct.removesuffix("StateMachine")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", base).lower()


def render_all(template: dict[str, Any]) -> dict[Path, str]:
    return {
        asl_file(workflow_file_name(name), state_machine_type(template, logical_id)): definition_with_placeholders(
            template, logical_id
        )
        for logical_id, name in state_machines(template).items()
    }
