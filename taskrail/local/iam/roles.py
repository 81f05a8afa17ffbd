"""Which role each principal of the template acts as, read from the template (never restated).

* a Lambda function: its ``Role`` (the execution role);
* a state machine: its ``RoleArn`` (the role its service integrations run as);
* a pipe: its ``RoleArn`` (reads the source, invokes the target, writes the DLQ);
* a schedule: its target's ``RoleArn``;
* an API Gateway method: its integration's ``Credentials`` (the role API Gateway assumes to call DynamoDB);
* an EventBridge rule's target with a ``RoleArn`` (the role EventBridge assumes to start a state machine).

Session names are what the service uses or a stable stand-in: Lambda names the session after the function
(``assumed-role/ROLE/FUNCTION``, as ``$context.identity`` and CloudTrail show); the others use the construct name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from taskrail.local.iam.principals import RoleCredential, role_credential
from taskrail.local.provision import LocalResources, Resolver
from workflows.asl import construct_name

__all__ = ["StackRoles"]


@dataclass
class StackRoles:
    functions: dict[str, RoleCredential] = field(default_factory=dict)  # function name -> its session
    state_machines: dict[str, RoleCredential] = field(default_factory=dict)  # state machine ARN -> session
    pipes: dict[str, RoleCredential] = field(default_factory=dict)  # pipe construct name -> session
    schedules: dict[str, RoleCredential] = field(default_factory=dict)  # schedule construct name -> session
    api_methods: dict[str, RoleCredential] = field(default_factory=dict)  # method logical id -> session
    rule_targets: dict[str, RoleCredential] = field(default_factory=dict)  # "RuleConstruct/TargetId" -> session

    def by_role(self) -> dict[str, RoleCredential]:
        """Role ARN -> one session of it (the state machine interpreter knows only the role ARN)."""
        found: dict[str, RoleCredential] = {}
        groups = (self.rule_targets, self.api_methods, self.schedules, self.pipes, self.state_machines, self.functions)
        for group in groups:
            for credential in group.values():
                found[credential.role_arn] = credential
        return found

    @classmethod
    def from_template(cls, template: Mapping[str, Any], local: LocalResources) -> StackRoles:
        resolve = Resolver(local)
        roles = cls()
        for logical_id, resource in template.get("Resources", {}).items():
            kind, props = resource.get("Type"), resource.get("Properties", {})
            if kind == "AWS::Lambda::Function" and "Role" in props:
                name = str(resolve({"Ref": logical_id}))
                roles.functions[name] = role_credential(str(resolve(props["Role"])), name)
            elif kind == "AWS::StepFunctions::StateMachine" and "RoleArn" in props:
                arn = str(resolve({"Ref": logical_id}))
                roles.state_machines[arn] = role_credential(
                    str(resolve(props["RoleArn"])), construct_name(dict(template), logical_id)
                )
            elif kind == "AWS::Pipes::Pipe" and "RoleArn" in props:
                construct = construct_name(dict(template), logical_id)
                roles.pipes[construct] = role_credential(str(resolve(props["RoleArn"])), construct)
            elif kind == "AWS::Scheduler::Schedule" and "RoleArn" in props.get("Target", {}):
                construct = construct_name(dict(template), logical_id)
                roles.schedules[construct] = role_credential(str(resolve(props["Target"]["RoleArn"])), construct)
            elif kind == "AWS::ApiGateway::Method" and "Credentials" in props.get("Integration", {}):
                role_arn = str(resolve(props["Integration"]["Credentials"]))
                roles.api_methods[logical_id] = role_credential(role_arn, "apigateway")
            elif kind == "AWS::Events::Rule":
                construct = construct_name(dict(template), logical_id)
                for target in props.get("Targets", []):
                    if "RoleArn" in target:
                        credential = role_credential(str(resolve(target["RoleArn"])), construct)
                        roles.rule_targets[f"{construct}/{target['Id']}"] = credential
        return roles
