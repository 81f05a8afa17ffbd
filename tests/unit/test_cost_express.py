"""The cost model's EXPRESS columns are the EXPRESS design (issue 14): each execution of a path is a request, the
EXPRESS lifecycle's own profiles price them, and the workflows' logging options are counted event by event."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from taskrail import cost
from taskrail.cost import EXPRESS, STANDARD, IndexInfo, TableInfo
from taskrail.cost.measure import log_option_name, logged, workflow_log_bytes
from tests.unit.test_cost import DEFINITION, fixed_prices, fixed_profile


def test_each_execution_of_a_path_is_one_express_request_with_its_own_rounding():
    # Given a path of two executions of 125 ms each (a replay that starts a new one), 250 ms in all
    two = replace(fixed_profile(), executions=2, express_ms=250.0)

    express = cost.price_path(two, EXPRESS, fixed_prices())["Step Functions"]

    # Then two requests, and each execution rounded up on its own: 2 x 0.2 s at 64 MB (not one 0.3 s)
    assert express == pytest.approx(2 * 0.001 + 2 * 0.2 * 0.0625 * 1)
    assert cost.price_path(two, STANDARD, fixed_prices())["Step Functions"] == pytest.approx(8 * 0.025)


def test_the_express_columns_price_the_express_lifecycles_profiles():
    path = tuple(cost.happy_path(DEFINITION))
    standard = replace(fixed_profile(), states=path, attempts=(1,) * len(path), transitions=len(path))
    # The EXPRESS lifecycle's own run: more states, two executions, more DynamoDB units
    express = replace(standard, executions=2, dynamodb_wru=40, express_ms=600.0)

    report = cost.compute_report(
        [standard], DEFINITION, fixed_prices(), express_profiles=[express], express_definition_name="x.asl.json"
    )

    ours_standard = report.cost(cost.TASKRAIL, STANDARD, "happy")
    ours_express = report.cost(cost.TASKRAIL, EXPRESS, "happy")
    assert ours_standard.items["DynamoDB writes"] == pytest.approx(19 * 0.01 * 1_000_000)
    assert ours_express.items["DynamoDB writes"] == pytest.approx(40 * 0.01 * 1_000_000)
    assert ours_express.items["Step Functions"] == pytest.approx((2 * 0.001 + 2 * 0.3 * 0.0625) * 1_000_000)
    assert report.express_profiles[cost.TASKRAIL]["happy"].executions == 2
    data = cost.as_json(report)
    assert data["expressDefinition"] == "x.asl.json"
    assert data["expressProfiles"]["taskrail"]["happy"]["executions"] == 2
    assert json.dumps(data)
    # Without them, the EXPRESS columns price the STANDARD profiles (as before issue 14)
    alone = cost.compute_report([standard], DEFINITION, fixed_prices())
    assert alone.cost(cost.TASKRAIL, EXPRESS, "happy").items["DynamoDB writes"] == pytest.approx(19 * 0.01 * 1e6)


EVENTS = [
    {"id": 1, "type": "ExecutionStarted", "executionStartedEventDetails": {"input": '["t"]'}},
    {"id": 2, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "ProcessTask", "input": "{}"}},
    {"id": 3, "type": "LambdaFunctionFailed", "lambdaFunctionFailedEventDetails": {"error": "E", "cause": "c"}},
    {"id": 4, "type": "FailStateEntered", "stateEnteredEventDetails": {"name": "TaskFailed", "input": "{}"}},
    {"id": 5, "type": "ExecutionFailed", "executionFailedEventDetails": {"error": "E", "cause": "c"}},
]


@pytest.mark.parametrize(
    ("level", "logged_ids"),
    [("OFF", []), ("FATAL", [5]), ("ERROR", [3, 4, 5]), ("ALL", [1, 2, 3, 4, 5])],
)
def test_each_log_level_logs_its_events(level, logged_ids):
    assert [e["id"] for e in EVENTS if logged(e, level)] == logged_ids


def test_execution_data_adds_the_inputs_to_what_a_level_logs():
    arn = "arn:aws:states:us-east-1:1:execution:m:x"
    without = workflow_log_bytes(EVENTS, arn, include_execution_data=False, level="ERROR")
    with_data = workflow_log_bytes(EVENTS, arn, include_execution_data=True, level="ERROR")
    assert 0 < without < with_data  # the Fail state's entered event carries its input
    assert workflow_log_bytes(EVENTS, arn, include_execution_data=False, level="OFF") == 0
    assert workflow_log_bytes(EVENTS, arn, level="ALL") > with_data
    assert log_option_name("ALL", True) == "ALL + execution data"


def test_an_include_index_entry_costs_its_projected_attributes_not_the_whole_item():
    # Given the sparse pending index (INCLUDE status, userId, ...) and a task whose params make it 3 KB
    pending = IndexInfo(
        "pendingShard-createdAt", frozenset({"pendingShard", "createdAt"}), "INCLUDE", frozenset({"status", "userId"})
    )
    table = TableInfo("T", frozenset({"taskId"}), (pending,))
    item = {
        "taskId": {"S": "t-1"},
        "pendingShard": {"S": "a"},
        "createdAt": {"N": "1"},
        "status": {"S": "QUEUED"},
        "userId": {"S": "alice"},
        "params": {"S": "x" * 3000},
    }

    # Then its PutItem writes 3 units for the item and 1 for the index entry (keys, status, userId), not 3 more
    assert cost.write_units("PutItem", {"Item": item}, table, 3, after_item=item) == 3 + 1
    # Without the item the entry is counted at the item's size, as before
    assert cost.write_units("PutItem", {"Item": item}, table, 3) == 3 + 3


def test_an_express_executions_logging_is_read_from_its_own_state_machine():
    """An Express execution's ARN is arn:aws:states:R:A:express:M:NAME:UUID (not ...:execution:M:NAME): its
    logging options are still its machine's (read as the defaults, ALL with execution data, they overcounted)."""
    from types import SimpleNamespace

    from taskrail.cost.measure import _logging

    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:taskrail-TaskLifecycle"
    resource = {
        "Type": "AWS::StepFunctions::StateMachine",
        "Properties": {"LoggingConfiguration": {"Level": "ALL", "IncludeExecutionData": False}},
    }
    platform = SimpleNamespace(
        resources=SimpleNamespace(state_machines={"TaskLifecycle": machine}),
        template={"Resources": {"TaskLifecycleStateMachineABC123": resource}},
    )
    express = f"{machine.replace(':stateMachine:', ':express:')}:t-1:0b6f3c3e-8d7f-4d3e-9c1a-5e2f0a9b7c11"
    standard = "arn:aws:states:us-east-1:123456789012:execution:taskrail-TaskLifecycle:t-1"
    for arn in (express, standard):
        assert _logging(platform, arn) == {"include_execution_data": False, "level": "ALL"}  # type: ignore[arg-type]
