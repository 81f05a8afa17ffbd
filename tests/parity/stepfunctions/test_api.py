"""StartExecution names and input, GetExecutionHistory options.

Evidence: [START] StartExecution, AWS Step Functions API Reference
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html): name optional ("If you
don't provide a name for the execution, Step Functions automatically generates a universally unique identifier
(UUID) as the execution name"), 1-80 characters, must not contain white space, brackets, wildcards, the special
characters " # % \\ ^ | ~ ` $ & , ; : / or control characters -> InvalidName; InvalidExecutionInput "The provided
JSON input data is not valid"; ExecutionAlreadyExists "The execution has the same name as another execution (but
a different input)", while the same name and input of a RUNNING execution is idempotent.
[HISTORY] GetExecutionHistory, API Reference: reverseOrder, maxResults (default 100) and nextToken,
includeExecutionData ("You can select whether execution data (input or output of a history event) is returned").
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import botocore.exceptions
import pytest

from taskrail.local.services import stepfunctions
from tests.parity.stepfunctions.cases import history, machine, start, wait_until

PASS3 = {
    "A": {"Type": "Pass", "Next": "B"},
    "B": {"Type": "Pass", "Next": "C"},
    "C": {"Type": "Pass", "End": True},
}


def code(exc: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_a_start_without_a_name_gets_a_uuid(aws: dict[str, Any]) -> None:
    sfn = aws["stepfunctions"]
    sm = machine(sfn, PASS3, "A")
    names = [sfn.describe_execution(executionArn=sfn.start_execution(stateMachineArn=sm)["executionArn"])["name"]]
    names.append(sfn.describe_execution(executionArn=sfn.start_execution(stateMachineArn=sm)["executionArn"])["name"])
    print("generated names:", names)
    assert all(str(uuid.UUID(n)) == n for n in names) and names[0] != names[1]


@pytest.mark.parametrize("name", ["x" * 81, "has space", "a/b", "a#b", "a{b}", "a*b", "a:b", "tab\tname", "\u0085x"])
def test_invalid_names_are_refused(aws: dict[str, Any], name: str) -> None:
    sfn = aws["stepfunctions"]
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sfn.start_execution(stateMachineArn=machine(sfn, PASS3, "A"), name=name)
    assert code(exc) == "InvalidName"


def test_a_name_of_80_allowed_characters_is_accepted(aws: dict[str, Any]) -> None:
    sfn = aws["stepfunctions"]
    arn = sfn.start_execution(stateMachineArn=machine(sfn, PASS3, "A"), name="a-b_C.9" + "x" * 73)["executionArn"]
    assert wait_until(sfn, arn)["status"] == "SUCCEEDED"


def test_input_that_is_not_json_is_refused(aws: dict[str, Any]) -> None:
    sfn = aws["stepfunctions"]
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sfn.start_execution(stateMachineArn=machine(sfn, PASS3, "A"), name="n", input="{not json")
    assert code(exc) == "InvalidExecutionInput"


def test_same_name_other_input_or_closed_is_execution_already_exists(aws: dict[str, Any]) -> None:
    sfn = aws["stepfunctions"]
    sm = machine(sfn, {"W": {"Type": "Wait", "Seconds": 600, "End": True}}, "W")
    with stepfunctions.time_scale(1):
        arn = start(sfn, sm, {"a": 1}, name="same")
        assert start(sfn, sm, {"a": 1}, name="same") == arn  # RUNNING, same input: idempotent
        with pytest.raises(botocore.exceptions.ClientError) as exc:
            start(sfn, sm, {"a": 2}, name="same")
        assert code(exc) == "ExecutionAlreadyExists"
        sfn.stop_execution(executionArn=arn)
        wait_until(sfn, arn)
    with pytest.raises(botocore.exceptions.ClientError) as closed:
        start(sfn, sm, {"a": 1}, name="same")
    assert code(closed) == "ExecutionAlreadyExists"


def test_history_reverse_order_pages_and_execution_data(aws: dict[str, Any]) -> None:
    sfn = aws["stepfunctions"]
    arn = start(sfn, machine(sfn, PASS3, "A"), {"secret": "s3"})
    wait_until(sfn, arn)
    every = history(sfn, arn)
    ids = [e["id"] for e in every]
    assert [e["id"] for e in history(sfn, arn, reverseOrder=True)] == ids[::-1]
    pages, token = [], None
    while True:
        kwargs = {"maxResults": 3, **({"nextToken": token} if token else {})}
        answer = sfn.get_execution_history(executionArn=arn, **kwargs)
        pages.append([e["id"] for e in answer["events"]])
        token = answer.get("nextToken")
        if not token:
            break
    print("pages:", pages)
    assert all(len(p) <= 3 for p in pages) and [i for p in pages for i in p] == ids
    bare = history(sfn, arn, includeExecutionData=False)
    assert "s3" not in json.dumps(bare, default=str) and "s3" in json.dumps(every, default=str)
    assert [e["type"] for e in bare] == [e["type"] for e in every]
