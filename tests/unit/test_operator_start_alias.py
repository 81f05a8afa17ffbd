"""A replay starts the lifecycle through its ``live`` alias, as the start pipe and the reconciler do (canary deploys,
docs/DEPLOY.md): a start through the alias runs the version the alias routes to, so a replay follows a deploy's
canary and its rollback. A stack without the StateMachineAliasArn output starts the state machine itself."""

from __future__ import annotations

from typing import Any

import pytest

from taskrail.operator.aws import StepFunctionsExecutions

MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:taskrail-lifecycle"


class RecordingStepFunctions:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def start_execution(self, **request: Any) -> dict[str, Any]:
        self.started.append(request)
        return {"executionArn": f"{MACHINE.replace(':stateMachine:', ':execution:')}:{request['name']}"}


@pytest.mark.parametrize(
    ("alias_arn", "started_on"),
    [(f"{MACHINE}:live", f"{MACHINE}:live"), ("", MACHINE)],
    ids=["through the alias", "no alias output"],
)
def test_a_start_names_the_lifecycles_alias_when_the_stack_has_one(alias_arn: str, started_on: str) -> None:
    sfn = RecordingStepFunctions()
    executions = StepFunctionsExecutions(lambda _service: sfn, MACHINE, start_arn=alias_arn)

    assert executions.start("t-1-r1", {"taskId": "t-1"}) is True

    print("started on:", [r["stateMachineArn"] for r in sfn.started])
    assert [(r["stateMachineArn"], r["name"]) for r in sfn.started] == [(started_on, "t-1-r1")]
