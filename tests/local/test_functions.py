"""FunctionPool: real awslambdaric workers against the local Runtime API, with Lambda's failure semantics."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from taskrail.local.functions import FunctionNotFound, FunctionPool, FunctionSpec
from taskrail.local.services import server
from taskrail.local.services.lambda_ import InvokeOutcome, LambdaThrottled

pytestmark = pytest.mark.timeout(60)  # hang guard for every test

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures" / "functions"
ENDPOINT = "http://127.0.0.1:4566"
SENTINEL = "TASKRAIL_TEST_PARENT_ONLY"
TIME_SCALE = 0.5  # a 2 s function timeout is enforced after 1 s
DEADLINE_SECONDS = 15.0


def spec(name: str, handler: str, *, timeout: int = 2, code_path: Path = FIXTURES, **env: str) -> FunctionSpec:
    return FunctionSpec(
        logical_id=f"{name}Function",
        name=f"test-{name}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:test-{name}",
        handler=handler,
        timeout_seconds=timeout,
        memory_mb=128,
        environment={"TASKS_TABLE_NAME": "tasks-table", **env},
        code_path=str(code_path),
    )


def body(outcome: InvokeOutcome) -> Any:
    return json.loads(outcome.payload)


def invoke(pool: FunctionPool, name: str, event: dict[str, Any] | None = None) -> InvokeOutcome:
    return pool.invoke(f"test-{name}", json.dumps(event or {}).encode(), None)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def in_background(call: Callable[[], InvokeOutcome]) -> Callable[[], InvokeOutcome]:
    """Run ``call`` on a thread; returns a function that joins it (with a deadline) and gives its result."""
    result: list[InvokeOutcome | BaseException] = []

    def run() -> None:
        try:
            result.append(call())
        except BaseException as error:
            result.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> InvokeOutcome:
        thread.join(DEADLINE_SECONDS)
        assert result, "invocation did not return"
        if isinstance(result[0], BaseException):
            raise result[0]
        return result[0]

    return join


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (read from /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


SPECS = {
    "Echo": spec("echo", "echo.handler", FEATURE_FLAG="on"),
    "Boom": spec("boom", "boom.handler"),
    "Crash": spec("crash", "crash.handler"),
    "BadImport": spec("bad", "bad_import.handler"),
}


@pytest.fixture(scope="module")
def pool() -> Iterator[FunctionPool]:
    functions = FunctionPool(
        SPECS,
        ENDPOINT,
        concurrency={"test-echo": 2},
        extra_env={"POWERTOOLS_TRACE_DISABLED": "true"},
        time_scale=TIME_SCALE,
    )
    with pytest.MonkeyPatch.context() as patch:  # in this process while the workers start, never in theirs
        patch.setenv(SENTINEL, "must not leak")
        patch.setenv("AWS_PROFILE", "parent-profile")
        functions.start()
    try:
        yield functions
    finally:
        functions.stop()


# --------------------------------------------------------------------------------------------------
# success and environment
# --------------------------------------------------------------------------------------------------


def test_success_round_trip(pool: FunctionPool) -> None:
    arn = SPECS["Echo"].arn
    before_ms = time.time() * 1000
    outcome = pool.invoke(f"{arn}:$LATEST", json.dumps({"taskId": "t-1", "n": [1, 2]}).encode(), None)
    after_ms = time.time() * 1000
    assert outcome.function_error is None
    answer = body(outcome)
    assert answer["event"] == {"taskId": "t-1", "n": [1, 2]}
    assert answer["function_arn"] == arn
    assert re.fullmatch(r"[0-9a-f-]{36}", answer["request_id"])
    assert answer["cwd"] == str(FIXTURES)
    # The context's deadline is the enforced (scaled) timeout, 2 s * 0.5, after the invocation started.
    assert int(before_ms) + 1000 <= answer["deadline_ms"] <= after_ms + 1000
    assert answer["remaining_ms"] <= 1000


def test_worker_environment_is_exactly_the_function_env_plus_runtime_variables(pool: FunctionPool) -> None:
    environ = body(invoke(pool, "echo"))["environ"]
    standard = {
        "AWS_ENDPOINT_URL",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "_HANDLER",
        "_X_AMZN_TRACE_ID",  # set by awslambdaric from the Lambda-Runtime-Trace-Id header
        "TZ",
        "LANG",
        "PATH",
        "PYTHONPATH",
        "PYTHONDONTWRITEBYTECODE",
    }
    assert set(environ) == {"TASKS_TABLE_NAME", "FEATURE_FLAG"} | standard | {"POWERTOOLS_TRACE_DISABLED"}
    assert SENTINEL not in environ
    assert "AWS_PROFILE" not in environ
    assert environ["TASKS_TABLE_NAME"] == "tasks-table"
    assert environ["FEATURE_FLAG"] == "on"
    assert environ["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert environ["AWS_ENDPOINT_URL"] == ENDPOINT
    assert re.fullmatch(r"127\.0\.0\.1:\d+", environ["AWS_LAMBDA_RUNTIME_API"])
    assert environ["AWS_LAMBDA_FUNCTION_NAME"] == "test-echo"
    assert environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert environ["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert environ["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/test-echo"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", environ["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert environ["AWS_REGION"] == environ["AWS_DEFAULT_REGION"] == "us-east-1"
    assert environ["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.11"
    assert environ["LAMBDA_TASK_ROOT"] == str(FIXTURES)
    assert environ["PYTHONPATH"].split(os.pathsep)[0] == str(FIXTURES)
    assert environ["_HANDLER"] == "echo.handler"
    assert environ["TZ"] == ":UTC"
    assert environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0", environ["_X_AMZN_TRACE_ID"])


def test_unknown_function_is_resource_not_found(pool: FunctionPool) -> None:
    with pytest.raises(FunctionNotFound) as caught:
        pool.invoke("arn:aws:lambda:us-east-1:123456789012:function:nope", b"{}", None)
    assert caught.value.aws_code == "ResourceNotFoundException"


# --------------------------------------------------------------------------------------------------
# failures
# --------------------------------------------------------------------------------------------------


def test_handler_exception_is_unhandled_with_the_class_name(pool: FunctionPool) -> None:
    outcome = invoke(pool, "boom", {"taskId": "t-9"})
    assert outcome.function_error == "Unhandled"
    error = body(outcome)
    assert error["errorType"] == "TransientTaskError"
    assert error["errorMessage"] == "try again: t-9"
    assert any("boom.py" in line for line in error["stackTrace"])


def test_timeout_is_sandbox_timedout_and_the_worker_is_replaced(pool: FunctionPool) -> None:
    wait_until(lambda: len(pool.worker_pids("test-echo")["test-echo"]) == 2, "two echo workers")
    before = pool.stats()["test-echo"]
    pids_before = set(pool.worker_pids("test-echo")["test-echo"])
    outcome = invoke(pool, "echo", {"sleep": 30})
    assert outcome.function_error == "Unhandled"
    error = body(outcome)
    assert error["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(r"RequestId: [0-9a-f-]{36} Error: Task timed out after 1\.00 seconds", error["errorMessage"])
    wait_until(lambda: pool.stats()["test-echo"].restarts == before.restarts + 1, "the replacement worker")
    wait_until(lambda: len(pool.worker_pids("test-echo")["test-echo"]) == 2, "two echo workers again")
    pids_after = set(pool.worker_pids("test-echo")["test-echo"])
    assert len(pids_after - pids_before) == 1  # the timed-out worker was replaced, the other one kept
    (timed_out,) = pids_before - pids_after
    wait_until(lambda: not alive(timed_out), "the timed-out worker to be gone")  # its 30 s sleep was cut short
    assert pool.stats()["test-echo"].timeouts == before.timeouts + 1
    answers = [invoke(pool, "echo", {"n": n}) for n in range(2)]
    assert [body(a)["event"] for a in answers] == [{"n": 0}, {"n": 1}]


def test_crash_mid_invocation_is_runtime_exit_error_and_the_worker_is_replaced(pool: FunctionPool) -> None:
    first_pid = body(invoke(pool, "crash"))["pid"]
    outcome = invoke(pool, "crash", {"crash": True})
    assert outcome.function_error == "Unhandled"
    error = body(outcome)
    assert error["errorType"] == "Runtime.ExitError"
    assert re.fullmatch(
        r"RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status 3", error["errorMessage"]
    )
    after = invoke(pool, "crash")
    assert after.function_error is None
    assert body(after)["pid"] != first_pid
    assert pool.stats()["test-crash"].crashes >= 1


def test_init_error_fails_invocations_without_hanging(pool: FunctionPool) -> None:
    for _ in range(2):  # each invocation tries a fresh init, as on AWS
        outcome = invoke(pool, "bad", {})
        assert outcome.function_error == "Unhandled"
        error = body(outcome)
        assert error["errorType"] == "Runtime.ImportModuleError"
        assert "taskrail_module_that_does_not_exist" in error["errorMessage"]
    stats = pool.stats()["test-bad"]
    assert stats.init_errors >= 2
    assert stats.invocations == 2
    assert stats.errors == 2


def test_kill_worker_fails_its_invocation_and_a_replacement_answers(pool: FunctionPool) -> None:
    slow = in_background(lambda: invoke(pool, "echo", {"sleep": 30}))
    wait_until(lambda: pool.stats()["test-echo"].busy == 1, "a busy echo worker")
    pid = pool.kill_worker("test-echo")
    assert pid is not None
    outcome = slow()
    assert outcome.function_error == "Unhandled"
    error = body(outcome)
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: signal: killed")
    assert invoke(pool, "echo").function_error is None
    wait_until(lambda: not alive(pid), "the killed worker to be gone")


# --------------------------------------------------------------------------------------------------
# concurrency and lifecycle
# --------------------------------------------------------------------------------------------------


def test_two_workers_run_two_invocations_in_parallel(pool: FunctionPool, tmp_path: Path) -> None:
    wait_until(lambda: len(pool.worker_pids("test-echo")["test-echo"]) == 2, "two echo workers")
    # Each invocation waits for the other to arrive: both meet only if they run at the same time.
    event = {"rendezvous": str(tmp_path), "parties": 2}
    joins = [in_background(lambda: invoke(pool, "echo", event)) for _ in range(2)]
    outcomes = [join() for join in joins]
    # (run one after the other, the first would wait for the second until its 1 s timeout: Sandbox.Timedout)
    assert [o.function_error for o in outcomes] == [None, None], [body(o) for o in outcomes]
    answers = [body(o) for o in outcomes]
    assert {a["pid"] for a in answers} == set(pool.worker_pids("test-echo")["test-echo"])
    assert [a["met"] for a in answers] == [True, True]


def test_invocations_beyond_capacity_queue_or_throttle() -> None:
    specs = {"Echo": spec("echo", "echo.handler")}
    with FunctionPool(specs, ENDPOINT, time_scale=TIME_SCALE) as queued:
        joins = [in_background(lambda: invoke(queued, "echo", {"sleep": 0.2})) for _ in range(2)]
        first, second = sorted((body(join()) for join in joins), key=lambda a: a["started"])
        assert second["started"] >= first["finished"]  # one worker: the second waited in the queue
    with FunctionPool(specs, ENDPOINT, time_scale=TIME_SCALE, max_queue=0) as throttling:
        busy = in_background(lambda: invoke(throttling, "echo", {"sleep": 30}))
        wait_until(lambda: throttling.stats()["test-echo"].busy == 1, "a busy worker")
        with pytest.raises(LambdaThrottled):
            invoke(throttling, "echo")
        assert throttling.stats()["test-echo"].throttles == 1
        assert busy().function_error == "Unhandled"  # Sandbox.Timedout after 1 s


def test_a_function_whose_workers_are_all_busy_scales_out_instead_of_queueing(tmp_path: Path) -> None:
    """Lambda gives each concurrent request an execution environment of its own ("Understanding Lambda function
    scaling"): with max_concurrency, three invocations that wait for each other all run, on one starting worker."""
    specs = {"Echo": spec("echo", "echo.handler")}
    with FunctionPool(specs, ENDPOINT, time_scale=TIME_SCALE * 10, max_concurrency=3) as scaling:
        event = {"rendezvous": str(tmp_path), "parties": 3}
        joins = [in_background(lambda: invoke(scaling, "echo", event)) for _ in range(3)]
        answers = [body(join()) for join in joins]
        assert [a.get("met") for a in answers] == [True, True, True], answers  # queued, they would time out
        assert len({a["pid"] for a in answers}) == 3
        assert scaling.stats()["test-echo"].workers == 3  # the extra workers stay, warm
        burst = [in_background(lambda: invoke(scaling, "echo", {"sleep": 0.2})) for _ in range(6)]
        assert [body(join())["event"] for join in burst] == [{"sleep": 0.2}] * 6  # all served, some after a wait
        assert scaling.stats()["test-echo"].workers == 3, "never more than max_concurrency"


def test_stop_leaves_no_process_behind_and_logs_as_lambda_does(tmp_path: Path) -> None:
    specs = {"Echo": spec("echo", "echo.handler"), "Crash": spec("crash", "crash.handler")}
    pool = FunctionPool(specs, ENDPOINT, concurrency=2, log_dir=tmp_path, time_scale=TIME_SCALE)
    with pool:
        answer = body(invoke(pool, "echo", {"spawn_child": True}))
        workers = [pid for pids in pool.worker_pids().values() for pid in pids]
        assert len(workers) == 4
        assert answer["pid"] in workers
        assert alive(answer["child"])
    for pid in [*workers, answer["child"]]:
        assert not alive(pid), f"process {pid} survived stop()"
    assert pool.worker_pids() == {"test-echo": [], "test-crash": []}
    log = (tmp_path / "test-echo.log").read_text()
    request_id = answer["request_id"]
    assert f"START RequestId: {request_id} Version: $LATEST" in log
    assert f"END RequestId: {request_id}" in log
    assert re.search(rf"REPORT RequestId: {request_id}\tDuration: [\d.]+ ms.*\tInit Duration: [\d.]+ ms", log)
    with pytest.raises(Exception, match="not running"):
        invoke(pool, "echo")


# --------------------------------------------------------------------------------------------------
# a real handler of the project, against moto in server mode
# --------------------------------------------------------------------------------------------------


def test_real_validate_handler_reaches_local_dynamodb() -> None:
    with server.threaded_server() as endpoint:
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        dynamodb.create_table(
            TableName="local-tasks",
            KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "taskId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(
            TableName="local-tasks",
            Item={
                "taskId": {"S": "t-1"},
                "userId": {"S": "u-1"},
                "type": {"S": "text.stats"},
                "params": {"S": json.dumps({"text": "to be or not to be"})},
                "status": {"S": "QUEUED"},
            },
        )
        validate = FunctionSpec(
            logical_id="ValidateTaskFunction",
            name="taskrail-ValidateTaskFunction",
            arn="arn:aws:lambda:us-east-1:123456789012:function:taskrail-ValidateTaskFunction",
            handler="validate_task.handler.handler",
            timeout_seconds=30,
            memory_mb=256,
            environment={
                "TASKS_TABLE_NAME": "local-tasks",
                "RESULTS_BUCKET_NAME": "local-results",
                "IDEMPOTENCY_TABLE_NAME": "local-idempotency",
                "POWERTOOLS_SERVICE_NAME": "ValidateTask",
                "POWERTOOLS_METRICS_NAMESPACE": "taskrail",
                "CLAIM_CHECK_THRESHOLD_BYTES": "200000",
            },
            code_path=str(ROOT / "lambdas"),
        )
        with FunctionPool({"ValidateTaskFunction": validate}, endpoint) as pool:
            missing = pool.invoke(validate.arn, b'{"taskId": "no-such-task"}', None)
            assert missing.function_error == "Unhandled"
            assert body(missing)["errorType"] == "PermanentTaskError"
            found = pool.invoke(validate.arn, b'{"taskId": "t-1", "attempt": 1}', None)
            assert found.function_error is None, found.payload
            assert body(found) == {
                "taskId": "t-1",
                "userId": "u-1",
                "type": "text.stats",
                "attempt": 1,
                "params": body(found)["params"],
                "paramsLocation": None,
            }
            assert body(found)["params"]["text"] == "to be or not to be"
