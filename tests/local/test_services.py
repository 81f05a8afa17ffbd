"""Tests for taskrail.local.services (the moto patches): each hook against moto's real Step Functions interpreter."""

from __future__ import annotations

import json
import random
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.config import default_user_config

from taskrail.local.mock_config import MockConfigError, load_mock_config
from taskrail.local.services import lambda_, registry, server, stepfunctions
from taskrail.local.services.dynamodb import install_atomic_dynamodb_writes, uninstall_atomic_dynamodb_writes
from taskrail.local.services.patching import Patch, Signature
from taskrail.local.stack import LOCAL_CREDENTIALS
from tests.claim_race import ClaimRace, gate_condition_checks

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/sfn-role"
DEADLINE_SECONDS = 10.0


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


class RecordingInvoker:
    """An invoker that plays a script of outcomes (or exceptions) and records each call."""

    def __init__(self, *script: lambda_.InvokeOutcome | Exception) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, Any, str | None]] = []
        self._lock = threading.Lock()

    def __call__(self, function_name: str, payload: bytes, qualifier: str | None) -> lambda_.InvokeOutcome:
        with self._lock:
            self.calls.append((function_name, json.loads(payload), qualifier))
            step = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(step, Exception):
            raise step
        return step


def transient(message: str = "try again") -> lambda_.InvokeOutcome:
    return lambda_.InvokeOutcome.unhandled("TransientTaskError", message, ["  File 'handler.py', line 1"])


def lambda_task(function_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_name, "Payload.$": "$"},
        "ResultSelector": {"result.$": "$.Payload"},
        **extra,
    }


def asl(states: dict[str, Any], start_at: str) -> str:
    return json.dumps({"StartAt": start_at, "States": states})


def run(sfn: Any, definition: str, *, name: str = "sm", execution_input: Any = None) -> dict[str, Any]:
    arn = sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE_ARN)["stateMachineArn"]
    execution_arn = sfn.start_execution(stateMachineArn=arn, name="run-1", input=json.dumps(execution_input or {}))[
        "executionArn"
    ]
    return wait_for(sfn, execution_arn)


def wait_for(sfn: Any, execution_arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError(f"{execution_arn} still RUNNING after {DEADLINE_SECONDS}s")


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws(config=server.LOCAL_MOTO_CONFIG):
        session = boto3.Session(region_name=REGION)
        clients = {name: session.client(name) for name in ("stepfunctions", "lambda", "iam", "dynamodb")}
        lambda_.create_stub_function(clients["lambda"], clients["iam"], "worker")
        yield clients


@pytest.fixture
def no_waiting() -> Iterator[stepfunctions.SleepLog]:
    with stepfunctions.time_scale(0), stepfunctions.record_sleeps() as log:
        yield log


# --------------------------------------------------------------------------------------------------
# compatibility check
# --------------------------------------------------------------------------------------------------


def test_assert_supported_moto_passes() -> None:
    registry.assert_supported_moto()


def test_assert_supported_moto_passes_while_hooks_installed() -> None:
    with (
        lambda_.lambda_invoker(RecordingInvoker(transient())),
        stepfunctions.time_scale(0),
        stepfunctions.install_mock_config({}),
    ):
        registry.assert_supported_moto()


def test_assert_supported_moto_names_the_symbol(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", "9.9.9")
    example = types.ModuleType("example")
    example.PATCHES = (  # type: ignore[attr-defined]
        Patch("example", depends=(Signature("example.Symbol.method", lambda: lambda a, b: None, ("a", "c")),)),
    )
    monkeypatch.setattr(registry, "SERVICES", (*registry.SERVICES, example))
    with pytest.raises(RuntimeError, match=r"moto.__version__: '9.9.9'") as info:
        registry.assert_supported_moto()
    assert "example.Symbol.method: parameters ['a', 'b'], expected ['a', 'c']" in str(info.value)


def test_hooks_are_removed_on_exit() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    original_invoke = LambdaSimpleBackend.invoke
    with lambda_.lambda_invoker(RecordingInvoker(transient())), stepfunctions.time_scale(0.5):
        assert LambdaSimpleBackend.invoke is not original_invoke
        assert retrier_decl.time is not time
    assert LambdaSimpleBackend.invoke is original_invoke
    assert retrier_decl.time is time


# --------------------------------------------------------------------------------------------------
# 1. lambda invoker
# --------------------------------------------------------------------------------------------------


def test_lambda_invoke_task_reaches_invoker(aws: dict[str, Any]) -> None:
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success({"status": "done"}))
    with lambda_.lambda_invoker(invoker):
        result = run(
            aws["stepfunctions"],
            asl({"Work": lambda_task("worker", End=True)}, "Work"),
            execution_input={"taskId": "t-1"},
        )
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"result": {"status": "done"}}
    assert invoker.calls == [("worker", {"taskId": "t-1"}, None)]


def test_handler_error_is_catchable_by_its_type(aws: dict[str, Any]) -> None:
    states = {
        "Work": lambda_task(
            "worker",
            Catch=[{"ErrorEquals": ["TransientTaskError"], "ResultPath": "$.error", "Next": "Caught"}],
            End=True,
        ),
        "Caught": {"Type": "Pass", "End": True},
    }
    with lambda_.lambda_invoker(RecordingInvoker(transient("db busy"))):
        result = run(aws["stepfunctions"], asl(states, "Work"))
    assert result["status"] == "SUCCEEDED", result
    error = json.loads(result["output"])["error"]
    assert error["Error"] == "TransientTaskError"
    assert json.loads(error["Cause"])["errorMessage"] == "db busy"


def test_uncaught_handler_error_fails_execution_with_its_type(aws: dict[str, Any]) -> None:
    with lambda_.lambda_invoker(RecordingInvoker(lambda_.InvokeOutcome.unhandled("ValueError", "bad input"))):
        result = run(aws["stepfunctions"], asl({"Work": lambda_task("worker", End=True)}, "Work"))
    assert result["status"] == "FAILED"
    assert result["error"] == "ValueError"


@pytest.mark.parametrize(
    ("exception", "expected_error"),
    [
        (lambda_.LambdaThrottled(), "Lambda.TooManyRequestsException"),
        (lambda_.LambdaServiceError("boom"), "Lambda.ServiceException"),
    ],
)
def test_service_errors_surface_as_lambda_errors(
    aws: dict[str, Any], exception: Exception, expected_error: str
) -> None:
    states = {
        "Work": lambda_task("worker", Catch=[{"ErrorEquals": [expected_error], "Next": "Caught"}], End=True),
        "Caught": {"Type": "Pass", "End": True},
    }
    with lambda_.lambda_invoker(RecordingInvoker(exception)):
        result = run(aws["stepfunctions"], asl(states, "Work"))
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["Error"] == expected_error


def test_unknown_function_is_resource_not_found(aws: dict[str, Any]) -> None:
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success({}))
    with lambda_.lambda_invoker(invoker):
        result = run(aws["stepfunctions"], asl({"Work": lambda_task("missing", End=True)}, "Work"))
    assert result["status"] == "FAILED"
    assert result["error"] == "Lambda.ResourceNotFoundException"
    assert invoker.calls == []


def test_direct_invoke_passes_qualifier_and_function_error_header(aws: dict[str, Any]) -> None:
    invoker = RecordingInvoker(transient())
    with lambda_.lambda_invoker(invoker):
        response = aws["lambda"].invoke(
            FunctionName="arn:aws:lambda:us-east-1:123456789012:function:worker:$LATEST", Payload=b'{"a": 1}'
        )
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "TransientTaskError"
    assert invoker.calls == [("worker", {"a": 1}, "$LATEST")]


def test_separate_qualifier_parameter_reaches_the_function(aws: dict[str, Any]) -> None:
    """AWS's Invoke takes the version or alias as ``?Qualifier=`` (botocore's Lambda model: ``location:
    querystring, locationName: Qualifier``; "Specify a version or alias to invoke a published version of the
    function"). moto 5.2.5 reads ``qualifier`` and loses it; the hook hands it on."""
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success({}))
    with lambda_.lambda_invoker(invoker):
        aws["lambda"].invoke(FunctionName="worker", Qualifier="$LATEST", Payload=b"{}")
        aws["lambda"].invoke(FunctionName="worker", Payload=b"{}")
    assert invoker.calls == [("worker", {}, "$LATEST"), ("worker", {}, None)]


def test_qualifier_hook_is_removed_with_the_invoker() -> None:
    with lambda_.lambda_invoker(RecordingInvoker(lambda_.InvokeOutcome.success({}))):
        assert lambda_._lambda_responses.LambdaResponse.invoke is lambda_._invoke_with_qualifier
    assert lambda_._lambda_responses.LambdaResponse.invoke is not lambda_._invoke_with_qualifier


# --------------------------------------------------------------------------------------------------
# 2. time scale
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


ASL_DIR = Path(__file__).resolve().parents[2] / "asl"
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
# 3. mock config
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
# server mode
# --------------------------------------------------------------------------------------------------


def test_server_mode_lambda_invoke_reaches_invoker() -> None:
    saved_config = json.dumps(default_user_config, sort_keys=True)
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success({"status": "served"}))
    with server.threaded_server("127.0.0.1", 0) as url, lambda_.lambda_invoker(invoker):
        # the endpoint takes only the local registry's keys (taskrail/local/users.py)
        session = boto3.Session(region_name=REGION, **LOCAL_CREDENTIALS)
        clients = {n: session.client(n, endpoint_url=url) for n in ("stepfunctions", "lambda", "iam")}
        lambda_.create_stub_function(clients["lambda"], clients["iam"], "worker")
        result = run(
            clients["stepfunctions"],
            asl({"Work": lambda_task("worker", End=True)}, "Work"),
            execution_input={"taskId": "t-9"},
        )
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"result": {"status": "served"}}
    assert invoker.calls == [("worker", {"taskId": "t-9"}, None)]
    assert json.dumps(default_user_config, sort_keys=True) == saved_config


def test_two_claims_racing_through_the_condition_check_cannot_both_win(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        key = {"k": {"S": "task-1"}}
        dynamodb.put_item(TableName="t", Item={**key, "s": {"S": "QUEUED"}})
        install_atomic_dynamodb_writes()
        gate_condition_checks(monkeypatch, ClaimRace())
        wins: list[int] = []

        def claim(me: int) -> None:
            try:
                dynamodb.update_item(
                    TableName="t",
                    Key=key,
                    UpdateExpression="SET s = :r, winner = :me",
                    ConditionExpression="s = :q",
                    ExpressionAttributeValues={":r": {"S": "RUNNING"}, ":q": {"S": "QUEUED"}, ":me": {"N": str(me)}},
                )
                wins.append(me)
            except dynamodb.exceptions.ConditionalCheckFailedException:
                pass

        try:
            threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=DEADLINE_SECONDS)
            assert not any(t.is_alive() for t in threads)
        finally:
            uninstall_atomic_dynamodb_writes()
        assert len(wins) == 1, f"{len(wins)} claims won"
        assert dynamodb.get_item(TableName="t", Key=key)["Item"]["winner"] == {"N": str(wins[0])}
