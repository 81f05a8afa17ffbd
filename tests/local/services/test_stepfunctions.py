"""taskrail.local.services.stepfunctions: the time scale and the Step Functions Local mock config, in moto's
interpreter."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from taskrail.local.mock_config import MockConfigError, load_mock_config
from taskrail.local.services import lambda_, stepfunctions
from tests.local.services.harness import (
    ROLE_ARN,
    RecordingInvoker,
    asl,
    lambda_task,
    run,
    transient,
    wait_for,
)

# --------------------------------------------------------------------------------------------------
# time scale
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def interpreter_pauses(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """Every real ``time.sleep`` and timed ``Event.wait`` made off the test's thread (by the interpreter)."""
    pauses: list[tuple[str, float]] = []
    test_thread = threading.current_thread()
    real_sleep, real_wait = time.sleep, threading.Event.wait

    def sleep(seconds: float) -> None:
        if threading.current_thread() is not test_thread:
            pauses.append(("sleep", seconds))
        real_sleep(seconds)

    def wait(self: threading.Event, timeout: float | None = None) -> bool:
        if timeout is not None and threading.current_thread() is not test_thread:
            pauses.append(("wait", timeout))
        return real_wait(self, timeout)

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(threading.Event, "wait", wait)
    return pauses


def test_retry_schedule_is_recorded_and_not_slept(
    aws: dict[str, Any], no_waiting: stepfunctions.SleepLog, interpreter_pauses: list[tuple[str, float]]
) -> None:
    retry = [{"ErrorEquals": ["TransientTaskError"], "IntervalSeconds": 2, "BackoffRate": 2, "MaxAttempts": 3}]
    invoker = RecordingInvoker(transient(), transient(), lambda_.InvokeOutcome.success({"ok": True}))
    with lambda_.lambda_invoker(invoker):
        result = run(aws["stepfunctions"], asl({"Work": lambda_task("worker", Retry=retry, End=True)}, "Work"))
    assert result["status"] == "SUCCEEDED", result
    assert len(invoker.calls) == 3
    assert no_waiting.retries() == [2, 4]
    assert [seconds for kind, seconds in interpreter_pauses if kind == "sleep"] == []


ASL_DIR = Path(__file__).resolve().parents[3] / "asl"
JITTER_SAMPLES = 5


def _workflow_retriers() -> dict[str, dict[str, Any]]:
    """Every distinct retry schedule in the generated workflows (asl/), named by the states that use it."""

    def states_of(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, state in states.items():
            yield name, state
            for branch in state.get("Branches", []):
                yield from states_of(branch["States"])
            if "ItemProcessor" in state:
                yield from states_of(state["ItemProcessor"]["States"])

    by_schedule: dict[str, tuple[list[str], dict[str, Any]]] = {}
    for path in sorted(ASL_DIR.glob("*.asl.json")):
        for name, state in states_of(json.loads(path.read_text())["States"]):
            for retrier in state.get("Retry", []):
                schedule = {k: v for k, v in retrier.items() if k != "ErrorEquals"}
                key = json.dumps(schedule, sort_keys=True)
                by_schedule.setdefault(key, ([], schedule))[0].append(f"{path.name.split('.')[0]}.{name}")
    return {
        f"{s['IntervalSeconds']}s-x{s.get('BackoffRate', 2)}-{s['MaxAttempts']}-max{s.get('MaxDelaySeconds')}s"
        f"-{s.get('JitterStrategy', 'NONE')}({len(names)} states, e.g. {names[0]})": s
        for names, s in by_schedule.values()
    }


WORKFLOW_RETRIERS = _workflow_retriers()


def retry_delays(sfn: Any, schedule: dict[str, Any], log: stepfunctions.SleepLog, runs: int) -> list[list[float]]:
    """Runs a task that always fails ``runs`` times under ``schedule``; returns the delays per attempt."""
    retry = [{"ErrorEquals": ["TransientTaskError"], **schedule}]
    definition = asl({"Work": lambda_task("worker", Retry=retry, End=True)}, "Work")
    arn = sfn.create_state_machine(name="jitter", definition=definition, roleArn=ROLE_ARN)["stateMachineArn"]
    per_run = []
    with lambda_.lambda_invoker(RecordingInvoker(transient())):
        for run_number in range(runs):
            before = len(log.retries())
            execution_arn = sfn.start_execution(stateMachineArn=arn, name=f"run-{run_number}", input="{}")
            assert wait_for(sfn, execution_arn["executionArn"])["status"] == "FAILED"
            per_run.append(log.retries()[before:])
    return [list(delays) for delays in zip(*per_run, strict=True)]


def assert_full_jitter(delays_per_attempt: list[list[float]], schedule: dict[str, Any]) -> None:
    """FULL jitter: each retry waits uniformly in [0, min(interval * rate**n, max delay)]: so the same attempt's
    delays spread (not all equal, not all zero) and none leaves the range."""
    assert len(delays_per_attempt) == schedule["MaxAttempts"]
    for attempt, delays in enumerate(delays_per_attempt):
        cap = min(
            schedule["IntervalSeconds"] * schedule.get("BackoffRate", 2.0) ** attempt, schedule["MaxDelaySeconds"]
        )
        assert all(0 <= delay <= cap for delay in delays), (attempt, cap, delays)
        assert len(set(delays)) > 1, f"attempt {attempt + 1}: every run waited {delays[0]} s (no jitter)"
        assert max(delays) > 0, f"attempt {attempt + 1}: no run waited at all"


def test_full_jitter_spreads_each_attempts_delay_within_its_cap(
    aws: dict[str, Any], no_waiting: stepfunctions.SleepLog
) -> None:
    schedule = {"IntervalSeconds": 4, "BackoffRate": 2, "MaxAttempts": 4, "MaxDelaySeconds": 10}
    random.seed(7)  # moto draws the jitter with random.uniform
    delays = retry_delays(aws["stepfunctions"], {**schedule, "JitterStrategy": "FULL"}, no_waiting, JITTER_SAMPLES)
    assert_full_jitter(delays, schedule)


def test_without_jitter_every_run_waits_the_same(aws: dict[str, Any], no_waiting: stepfunctions.SleepLog) -> None:
    # The check above is not vacuous: the same schedule without jitter fails it.
    schedule = {"IntervalSeconds": 4, "BackoffRate": 2, "MaxAttempts": 4, "MaxDelaySeconds": 10}
    delays = retry_delays(aws["stepfunctions"], schedule, no_waiting, 3)
    assert delays == [[4, 4, 4], [8, 8, 8], [10, 10, 10], [10, 10, 10]]
    with pytest.raises(AssertionError, match="no jitter"):
        assert_full_jitter(delays, schedule)


@pytest.mark.parametrize("states", list(WORKFLOW_RETRIERS))
def test_every_workflow_retry_uses_full_jitter(
    aws: dict[str, Any], no_waiting: stepfunctions.SleepLog, states: str
) -> None:
    # workflows/retry_policies.py: "Every policy uses FULL jitter ... so that a burst of failing tasks does not
    # retry in lock-step". Run each generated schedule in the interpreter and look at what it waited.
    schedule = WORKFLOW_RETRIERS[states]
    random.seed(11)
    assert_full_jitter(retry_delays(aws["stepfunctions"], schedule, no_waiting, JITTER_SAMPLES), schedule)


def test_wait_state_is_scaled_and_recorded(aws: dict[str, Any], interpreter_pauses: list[tuple[str, float]]) -> None:
    states = {"Pause": {"Type": "Wait", "Seconds": 30, "Next": "Done"}, "Done": {"Type": "Pass", "End": True}}
    with stepfunctions.time_scale(0.001), stepfunctions.record_sleeps() as log:
        result = run(aws["stepfunctions"], asl(states, "Pause"))
    assert result["status"] == "SUCCEEDED", result
    assert log.waits() == [30]
    waits = [seconds for kind, seconds in interpreter_pauses if kind == "wait"]
    assert waits and max(waits) <= 30 * 0.001, waits
    assert stepfunctions.SleepRecord("wait", 30.0) in stepfunctions.recorded_sleeps()


def test_time_scale_rejects_negative() -> None:
    with pytest.raises(ValueError, match="time scale"):
        stepfunctions.set_time_scale(-1)


# --------------------------------------------------------------------------------------------------
# mock config
# --------------------------------------------------------------------------------------------------

MOCK_CONFIG: dict[str, Any] = {
    "StateMachines": {
        "orders": {
            "TestCases": {
                "HappyPath": {"Process": "ProcessOk", "Record": "RecordOk"},
                "RetryPath": {"Process": "ProcessFlaky", "Record": "RecordOk"},
                "Duplicate": {"Process": "ProcessOk", "Record": "RecordConflict"},
                "HybridPath": {"Record": "RecordOk"},
            }
        }
    },
    "MockedResponses": {
        "ProcessOk": {"0": {"Return": {"StatusCode": 200, "Payload": {"status": "mocked"}}}},
        "ProcessFlaky": {
            "0-1": {"Throw": {"Error": "Lambda.ServiceException", "Cause": "flaky"}},
            "2": {"Return": {"StatusCode": 200, "Payload": {"status": "third time"}}},
        },
        "RecordOk": {"0": {"Return": {"Attributes": {"state": {"S": "DONE"}}}}},
        "RecordConflict": {
            "0": {"Throw": {"Error": "DynamoDB.ConditionalCheckFailedException", "Cause": "already done"}}
        },
    },
}

ORDERS_ASL = asl(
    {
        "Process": lambda_task(
            "worker",
            Retry=[{"ErrorEquals": ["Lambda.ServiceException"], "IntervalSeconds": 2, "MaxAttempts": 3}],
            Next="Record",
        ),
        "Record": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:updateItem",
            "Parameters": {
                "TableName": "tasks",
                "Key": {"pk": {"S": "t-1"}},
                "UpdateExpression": "SET #s = :done",
                "ConditionExpression": "attribute_not_exists(#s)",
                "ExpressionAttributeNames": {"#s": "state"},
                "ExpressionAttributeValues": {":done": {"S": "DONE"}},
            },
            "ResultPath": "$.record",
            "Catch": [
                {
                    "ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"],
                    "ResultPath": "$.error",
                    "Next": "AlreadyDone",
                }
            ],
            "End": True,
        },
        "AlreadyDone": {"Type": "Pass", "End": True},
    },
    "Process",
)


@pytest.fixture
def orders(aws: dict[str, Any]) -> Iterator[tuple[Any, str]]:
    sfn = aws["stepfunctions"]
    arn = sfn.create_state_machine(name="orders", definition=ORDERS_ASL, roleArn=ROLE_ARN)["stateMachineArn"]
    with stepfunctions.install_mock_config(MOCK_CONFIG):
        yield sfn, arn


def test_mock_config_happy_path_via_arn_suffix(orders: tuple[Any, str]) -> None:
    sfn, arn = orders
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success({"status": "real"}))
    with lambda_.lambda_invoker(invoker):
        execution_arn = sfn.start_execution(stateMachineArn=f"{arn}#HappyPath", name="happy", input="{}")[
            "executionArn"
        ]
        result = wait_for(sfn, execution_arn)
    assert result["status"] == "SUCCEEDED", result
    assert result["stateMachineArn"] == arn
    output = json.loads(result["output"])
    assert output["result"] == {"status": "mocked"}
    assert output["record"] == {"Attributes": {"state": {"S": "DONE"}}}
    assert invoker.calls == []  # mocked states never call the service


def test_mock_config_retry_by_attempt_number(orders: tuple[Any, str], no_waiting: stepfunctions.SleepLog) -> None:
    sfn, arn = orders
    execution_arn = stepfunctions.start_execution_with_test_case(sfn, arn, "RetryPath", name="retry", input={"a": 1})
    result = wait_for(sfn, execution_arn)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["result"] == {"status": "third time"}
    assert no_waiting.retries() == [2, 4]  # BackoffRate defaults to 2.0


def test_mocked_dynamodb_error_keeps_its_name(orders: tuple[Any, str]) -> None:
    sfn, arn = orders
    result = wait_for(sfn, stepfunctions.start_execution_with_test_case(sfn, arn, "Duplicate", name="dup"))
    assert result["status"] == "SUCCEEDED", result
    error = json.loads(result["output"])["error"]
    assert error == {"Error": "DynamoDB.ConditionalCheckFailedException", "Cause": "already done"}


def test_unmocked_states_call_the_real_service(orders: tuple[Any, str]) -> None:
    sfn, arn = orders
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success({"status": "real"}))
    with lambda_.lambda_invoker(invoker):
        result = wait_for(sfn, stepfunctions.start_execution_with_test_case(sfn, arn, "HybridPath", name="hybrid"))
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["result"] == {"status": "real"}
    assert len(invoker.calls) == 1


def test_plain_arn_runs_unmocked_while_config_installed(orders: tuple[Any, str]) -> None:
    sfn, arn = orders
    with lambda_.lambda_invoker(RecordingInvoker(lambda_.InvokeOutcome.success({"status": "real"}))):
        result = wait_for(sfn, sfn.start_execution(stateMachineArn=arn, name="plain")["executionArn"])
    # the real updateItem runs against a table that does not exist
    assert result["status"] == "FAILED"
    assert result["error"] == "DynamoDB.ResourceNotFoundException"


def test_unknown_test_case_is_rejected(orders: tuple[Any, str]) -> None:
    sfn, arn = orders
    with pytest.raises(sfn.exceptions.InvalidName, match="NoSuchCase"):
        sfn.start_execution(stateMachineArn=f"{arn}#NoSuchCase", name="x")


def test_mock_config_validation_errors() -> None:
    with pytest.raises(MockConfigError, match="consecutively"):
        load_mock_config({"MockedResponses": {"R": {"1": {"Return": {}}}}})
    with pytest.raises(MockConfigError, match="unknown mocked response"):
        load_mock_config({"StateMachines": {"sm": {"TestCases": {"T": {"S": "Nope"}}}}})
    with pytest.raises(MockConfigError, match="exactly one of"):
        load_mock_config({"MockedResponses": {"R": {"0": {"Return": {}, "Throw": {"Error": "E"}}}}})


def test_mock_config_loads_from_path(tmp_path: Any) -> None:
    path = tmp_path / "MockConfigFile.json"
    path.write_text(json.dumps(MOCK_CONFIG))
    config = load_mock_config(path)
    assert config.test_case("orders", "HappyPath") == {"Process": "ProcessOk", "Record": "RecordOk"}
    assert [(r.start, r.end) for r in config.mocked_responses["ProcessFlaky"]] == [(0, 1), (2, 2)]


# --------------------------------------------------------------------------------------------------
# JSONPath parsed once
# --------------------------------------------------------------------------------------------------


def test_each_jsonpath_is_parsed_once_and_paths_still_select_as_moto_does(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given jsonpath_ng's parsers, counting their calls, under the cache
    import jsonpath_ng
    import jsonpath_ng.ext

    parsed: list[str] = []
    for module, name in ((jsonpath_ng.ext, "parse"), (jsonpath_ng, "parse")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda path, real=real: parsed.append(path) or real(path))
    stepfunctions.uninstall_jsonpath_cache()
    monkeypatch.setattr(stepfunctions, "_JSONPATH_MODULES", tuple(
        (m, n, jsonpath_ng.ext.parse if n.startswith("jsonpath_ng.ext") else jsonpath_ng.parse)
        for m, n, _ in stepfunctions._JSONPATH_MODULES
    ))  # fmt: skip
    stepfunctions.install_jsonpath_cache()
    try:
        # When two executions run a machine with an InputPath, Parameters paths and a ResultPath
        definition = asl(
            {
                "Pick": {
                    "Type": "Pass",
                    "InputPath": "$.task",
                    "Parameters": {"id.$": "$.id", "first.$": "$.items[0]"},
                    "ResultPath": "$.picked",
                    "End": True,
                }
            },
            "Pick",
        )
        sfn = aws["stepfunctions"]
        arn = sfn.create_state_machine(name="paths", definition=definition, roleArn=ROLE_ARN)["stateMachineArn"]
        outputs = []
        for run_id, task_id in (("a", "t-1"), ("b", "t-2")):
            task = {"id": task_id, "items": [f"{task_id}-x", "y"]}
            started = sfn.start_execution(stateMachineArn=arn, name=run_id, input=json.dumps({"task": task}))
            described = wait_for(sfn, started["executionArn"])
            assert described["status"] == "SUCCEEDED", described
            outputs.append(json.loads(described["output"]))
    finally:
        stepfunctions.uninstall_jsonpath_cache()
        monkeypatch.undo()
        stepfunctions.install_jsonpath_cache()
    # Then each execution selected its own values, as moto does without the cache
    assert [o["picked"] for o in outputs] == [{"id": "t-1", "first": "t-1-x"}, {"id": "t-2", "first": "t-2-x"}]
    # and each distinct path was parsed once for both executions
    assert sorted(parsed) == sorted(set(parsed)), parsed
    assert {"$.task", "$.id", "$.items[0]", "$.picked"} <= set(parsed)


# --------------------------------------------------------------------------------------------------
# Speed: one interpreter client per service
# --------------------------------------------------------------------------------------------------


def test_the_interpreters_client_is_reused_when_the_state_has_credentials_and_no_role_signs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given no role client factory (in-process, mock_aws) and states that carry their machine's role
    from types import SimpleNamespace

    from moto.stepfunctions.parser.asl.utils import boto_client as sfn_boto_client

    built: list[tuple[str, str]] = []
    monkeypatch.setattr(stepfunctions, "_role_clients", None)
    monkeypatch.setattr(stepfunctions, "_service_clients", {})
    monkeypatch.setattr(
        sfn_boto_client,
        "boto_client_for",
        lambda region, service, state_credentials=None: built.append((region, service)) or object(),
    )
    first = SimpleNamespace(role_arn="arn:aws:iam::123456789012:role/first")
    second = SimpleNamespace(role_arn="arn:aws:iam::123456789012:role/second")
    # When three service calls run, two for one service
    a = stepfunctions._cached_client("us-east-1", "dynamodb", first)
    b = stepfunctions._cached_client("us-east-1", "dynamodb", second)
    c = stepfunctions._cached_client("us-east-1", "sqs", first)
    # Then moto's fixed-key client is built once per service, whatever the credentials (it ignores them)
    assert a is b and a is not c
    assert built == [("us-east-1", "dynamodb"), ("us-east-1", "sqs")]


def test_the_client_cache_check_fails_if_moto_starts_using_the_states_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client as sfn_boto_client

    assert stepfunctions._ignores_state_credentials()  # moto 5.2.5's, as installed

    def uses_them(region: str, service: str, state_credentials: Any = None) -> Any:
        return (region, service, state_credentials.role_arn)

    monkeypatch.setattr(sfn_boto_client, "boto_client_for", uses_them)
    assert not stepfunctions._ignores_state_credentials()
