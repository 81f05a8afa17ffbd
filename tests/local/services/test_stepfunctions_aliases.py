"""taskrail.local.services.stepfunctions_aliases: versions and aliases of a state machine, as AWS runs them.

AWS's recorded responses (LocalStack's ``test_sfn_api_aliasing.snapshot.json``,
``describe_execution_response_through_alias``): an execution started through an alias has the ARN
``execution:<machine>:<name>`` and DescribeExecution shows the unqualified ``stateMachineArn``, the
``stateMachineAliasArn`` and the ``stateMachineVersionArn`` it ran; one started through a version ARN shows the
version and no alias; an unqualified start shows neither. "StartExecution" (API Reference): an alias ARN starts
"that version or alias"; the alias's routing configuration sends each start to one of its (at most two) versions
by weight ("Alias routing", Developer Guide).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from taskrail.local.services import registry, stepfunctions_aliases
from tests.local.services.harness import ROLE_ARN, asl, wait_for


def pass_state(result: str) -> str:
    return asl({"Answer": {"Type": "Pass", "Result": {"version": result}, "End": True}}, "Answer")


@pytest.fixture
def sfn(aws: dict[str, Any]) -> Iterator[Any]:
    with registry.aws_semantics():
        stepfunctions_aliases.seed_routing(16)
        yield aws["stepfunctions"]
        stepfunctions_aliases.seed_routing(None)


@pytest.fixture
def two_versions(sfn: Any) -> dict[str, str]:
    """A state machine whose version 1 answers "one" and version 2 "two" (its latest revision)."""
    machine = sfn.create_state_machine(name="canary", definition=pass_state("one"), roleArn=ROLE_ARN)
    arn = machine["stateMachineArn"]
    first = sfn.publish_state_machine_version(stateMachineArn=arn)["stateMachineVersionArn"]
    sfn.update_state_machine(stateMachineArn=arn, definition=pass_state("two"))
    second = sfn.publish_state_machine_version(stateMachineArn=arn, description="the canary")["stateMachineVersionArn"]
    return {"machine": arn, "v1": first, "v2": second}


def answer(sfn: Any, execution_arn: str) -> str:
    return str(json.loads(wait_for(sfn, execution_arn)["output"])["version"])


def test_publishing_gives_numbered_versions_and_an_unchanged_revision_is_not_published_twice(
    sfn: Any, two_versions: dict[str, str]
) -> None:
    assert two_versions["v1"] == f"{two_versions['machine']}:1"
    assert two_versions["v2"] == f"{two_versions['machine']}:2"
    again = sfn.publish_state_machine_version(stateMachineArn=two_versions["machine"])["stateMachineVersionArn"]
    assert again == two_versions["v2"]


def test_an_execution_through_an_alias_runs_its_version_and_describes_the_alias_and_version(
    sfn: Any, two_versions: dict[str, str]
) -> None:
    alias = sfn.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": two_versions["v1"], "weight": 100}]
    )["stateMachineAliasArn"]
    execution_arn = sfn.start_execution(stateMachineArn=alias, name="through-alias", input="{}")["executionArn"]

    assert execution_arn.endswith(":execution:canary:through-alias")
    assert answer(sfn, execution_arn) == "one"  # the alias's version, not the latest revision ("two")
    described = sfn.describe_execution(executionArn=execution_arn)
    print("described through the alias:", {k: described[k] for k in described if k.startswith("stateMachine")})
    assert described["stateMachineArn"] == two_versions["machine"]
    assert described["stateMachineAliasArn"] == alias
    assert described["stateMachineVersionArn"] == two_versions["v1"]
    listed = sfn.list_executions(stateMachineArn=two_versions["machine"])["executions"]
    assert [(e["stateMachineAliasArn"], e["stateMachineVersionArn"]) for e in listed] == [(alias, two_versions["v1"])]


def test_a_version_start_names_the_version_only_and_an_unqualified_start_neither(
    sfn: Any, two_versions: dict[str, str]
) -> None:
    by_version = sfn.start_execution(stateMachineArn=two_versions["v1"], name="by-version")["executionArn"]
    unqualified = sfn.start_execution(stateMachineArn=two_versions["machine"], name="unqualified")["executionArn"]

    assert answer(sfn, by_version) == "one"
    assert answer(sfn, unqualified) == "two"
    version_run = sfn.describe_execution(executionArn=by_version)
    assert version_run["stateMachineVersionArn"] == two_versions["v1"]
    assert "stateMachineAliasArn" not in version_run
    latest_run = sfn.describe_execution(executionArn=unqualified)
    assert "stateMachineVersionArn" not in latest_run and "stateMachineAliasArn" not in latest_run


def test_an_alias_routes_starts_to_its_two_versions_by_weight(sfn: Any, two_versions: dict[str, str]) -> None:
    alias = sfn.create_state_machine_alias(
        name="live",
        routingConfiguration=[
            {"stateMachineVersionArn": two_versions["v1"], "weight": 70},
            {"stateMachineVersionArn": two_versions["v2"], "weight": 30},
        ],
    )["stateMachineAliasArn"]
    starts = 200
    arns = [sfn.start_execution(stateMachineArn=alias, name=f"run-{n}")["executionArn"] for n in range(starts)]
    versions = Counter(sfn.describe_execution(executionArn=a)["stateMachineVersionArn"] for a in arns)
    answers = Counter(answer(sfn, a) for a in arns)
    print("routed 70/30:", dict(versions), "answers:", dict(answers))

    assert set(versions) == {two_versions["v1"], two_versions["v2"]}
    # Binomial(200, 0.3): 60 expected, standard deviation 6.5; the seeded draw is fixed, the bounds are 3 sigma.
    assert 40 <= versions[two_versions["v2"]] <= 80
    assert answers["two"] == versions[two_versions["v2"]] and answers["one"] == versions[two_versions["v1"]]


def test_rolling_back_is_an_alias_change(sfn: Any, two_versions: dict[str, str]) -> None:
    alias = sfn.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": two_versions["v2"], "weight": 100}]
    )["stateMachineAliasArn"]
    sfn.update_state_machine_alias(
        stateMachineAliasArn=alias, routingConfiguration=[{"stateMachineVersionArn": two_versions["v1"], "weight": 100}]
    )
    execution_arn = sfn.start_execution(stateMachineArn=alias, name="after-rollback")["executionArn"]
    assert answer(sfn, execution_arn) == "one"


def test_a_name_is_unique_across_the_machine_its_versions_and_aliases(sfn: Any, two_versions: dict[str, str]) -> None:
    sfn.start_execution(stateMachineArn=two_versions["machine"], name="once", input='{"a": 1}')
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=two_versions["v1"], name="once", input='{"a": 2}')
    assert raised.value.response["Error"]["Code"] == "ExecutionAlreadyExists"


def test_an_unknown_alias_or_version_is_refused(sfn: Any, two_versions: dict[str, str]) -> None:
    with pytest.raises(ClientError) as alias:
        sfn.start_execution(stateMachineArn=f"{two_versions['machine']}:nope", name="x")
    with pytest.raises(ClientError) as version:
        sfn.start_execution(stateMachineArn=f"{two_versions['machine']}:9", name="y")
    assert alias.value.response["Error"]["Code"] == "ResourceNotFound"
    assert version.value.response["Error"]["Code"] == "StateMachineDoesNotExist"
