"""RedriveExecution parity cases, each against AWS's documented or recorded behaviour.

Evidence:
- [API] RedriveExecution, AWS Step Functions API Reference
  (https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html): "Restarts unsuccessful
  executions of Standard workflows that didn't complete successfully in the last 14 days. These include failed,
  aborted, or timed out executions. [...] it continues the failed execution from the unsuccessful step and uses the
  same input. Step Functions preserves the results and execution history of the successful steps, and doesn't rerun
  these steps [...] Redriven executions use the same state machine definition and execution ARN"; errors
  ExecutionDoesNotExist, ExecutionNotRedrivable ("The execution [...] cannot be redriven"), InvalidArn.
- [DESCRIBE] DescribeExecution, API Reference: redriveCount ("only updated if you successfully redrive"),
  redriveDate, redriveStatus ("NOT_REDRIVABLE if calling the RedriveExecution API action would return the
  ExecutionNotRedrivable error"), redriveStatusReason ("Execution is RUNNING and cannot be redriven",
  "Execution is SUCCEEDED and cannot be redriven", "Execution redrivable period exceeded", ...). A
  DescribeExecution recorded against AWS (serverless examples, aws-node-step-functions README) reads
  ``redriveCount: 0, redriveStatus: 'NOT_REDRIVABLE', redriveStatusReason: 'Execution is SUCCEEDED and cannot be
  redriven'`` (no full stop).
- [EVENT] ExecutionRedrivenEventDetails, API Reference: ``redriveCount``, "The number of times you've redriven".
- [LIST] ListExecutions, API Reference: ``redriveFilter`` REDRIVEN | NOT_REDRIVEN; ExecutionListItem redriveCount,
  redriveDate.
- [CONTEXT] "Accessing execution data from the Context object", Developer Guide: ``Execution.RedriveCount``.
"""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any

import botocore.exceptions
import pytest
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from taskrail.local.services import lambda_
from tests.parity import aws_cli
from tests.parity.stepfunctions.cases import history, lambda_task, machine, start, wait_until


class ScriptedWorker:
    """The Lambda function "worker": fails until ``fixed``; can block until released (a RUNNING execution)."""

    def __init__(self, *, block: bool = False) -> None:
        self.calls: list[Any] = []
        self.fixed = False
        self.release = threading.Event()
        if not block:
            self.release.set()

    def __call__(self, function_name: str, payload: bytes, qualifier: str | None) -> lambda_.InvokeOutcome:
        self.calls.append(json.loads(payload))
        self.release.wait(timeout=15)
        if self.fixed:
            return lambda_.InvokeOutcome.success({"done": True})
        return lambda_.InvokeOutcome.unhandled("PoisonTask", "not fixed yet")


@pytest.fixture
def worker(aws: dict[str, Any]) -> ScriptedWorker:
    script = ScriptedWorker()
    lambda_.install_lambda_invoker(script)
    return script


def three_steps(sfn: Any) -> str:
    return machine(
        sfn,
        {
            "Prepare": {"Type": "Pass", "Result": {"prepared": True}, "ResultPath": "$.prep", "Next": "Work"},
            "Work": lambda_task("worker", ResultPath="$.work", Next="Count"),
            "Count": {"Type": "Pass", "Parameters": {"redriveCount.$": "$$.Execution.RedriveCount"}, "End": True},
        },
        "Prepare",
    )


def error_code(exc: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_redrive_resumes_at_the_failed_state_with_its_input_and_keeps_the_arn(
    aws: dict[str, Any], worker: ScriptedWorker
) -> None:
    """[API] same ARN, the failed step rerun with the same input, the successful step not rerun; [EVENT]."""
    sfn = aws["stepfunctions"]
    arn = start(sfn, three_steps(sfn), {"taskId": "t-1"})
    failed = wait_until(sfn, arn)
    assert failed["status"] == "FAILED" and failed["error"] == "PoisonTask", failed
    assert (failed["redriveCount"], failed["redriveStatus"]) == (0, "REDRIVABLE"), failed
    worker.fixed = True

    answer = sfn.redrive_execution(executionArn=arn)
    done = wait_until(sfn, arn)
    print("redrive:", answer["redriveDate"], done["status"], done["redriveCount"], done.get("redriveStatusReason"))

    assert done["executionArn"] == arn and done["status"] == "SUCCEEDED", done
    assert worker.calls == [{"taskId": "t-1", "prep": {"prepared": True}}] * 2  # same input both times
    events = history(sfn, arn)
    types = [e["type"] for e in events]
    assert types.count("PassStateEntered") == 2  # Prepare once, Count once: Prepare was not rerun
    assert [e["stateEnteredEventDetails"]["name"] for e in events if e["type"] == "PassStateEntered"] == [
        "Prepare",
        "Count",
    ]
    redriven = [e for e in events if e["type"] == "ExecutionRedriven"]
    assert len(redriven) == 1 and redriven[0]["executionRedrivenEventDetails"] == {"redriveCount": 1}
    assert types.index("ExecutionFailed") < types.index("ExecutionRedriven") < types.index("ExecutionSucceeded")
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))  # one history, ids go on
    assert (done["redriveCount"], done["redriveStatus"]) == (1, "NOT_REDRIVABLE")
    assert done["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven"
    assert done["redriveDate"] == answer["redriveDate"]
    assert json.loads(done["output"]) == {"redriveCount": 1}  # [CONTEXT] $$.Execution.RedriveCount


def test_first_run_context_redrive_count_is_zero(aws: dict[str, Any]) -> None:
    """[CONTEXT] Execution.RedriveCount on a run never redriven."""
    sfn = aws["stepfunctions"]
    sm = machine(sfn, {"C": {"Type": "Pass", "Parameters": {"n.$": "$$.Execution.RedriveCount"}, "End": True}}, "C")
    done = wait_until(sfn, start(sfn, sm))
    assert json.loads(done["output"]) == {"n": 0}, done


def test_redrive_of_a_succeeded_execution_is_refused(aws: dict[str, Any]) -> None:
    """[API] ExecutionNotRedrivable; [DESCRIBE] the recorded reason."""
    sfn = aws["stepfunctions"]
    arn = start(sfn, machine(sfn, {"P": {"Type": "Pass", "End": True}}, "P"))
    done = wait_until(sfn, arn)
    assert done["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven", done
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sfn.redrive_execution(executionArn=arn)
    print("succeeded:", error_code(exc), exc.value.response["Error"]["Message"])
    assert error_code(exc) == "ExecutionNotRedrivable"
    assert wait_until(sfn, arn)["redriveCount"] == 0


def test_redrive_of_a_running_execution_is_refused_then_an_aborted_one_redrives(aws: dict[str, Any]) -> None:
    """[API] RUNNING is not redrivable; ABORTED is; [DESCRIBE] the RUNNING reason."""
    sfn = aws["stepfunctions"]
    script = ScriptedWorker(block=True)
    script.fixed = True
    lambda_.install_lambda_invoker(script)
    arn = start(sfn, three_steps(sfn))
    running = wait_until(sfn, arn, lambda d: bool(script.calls))
    assert running["status"] == "RUNNING"
    assert (running["redriveStatus"], running["redriveStatusReason"]) == (
        "NOT_REDRIVABLE",
        "Execution is RUNNING and cannot be redriven",
    )
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sfn.redrive_execution(executionArn=arn)
    assert error_code(exc) == "ExecutionNotRedrivable"

    sfn.stop_execution(executionArn=arn)
    aborted = wait_until(sfn, arn)
    assert (aborted["status"], aborted["redriveStatus"]) == ("ABORTED", "REDRIVABLE"), aborted
    script.release.set()
    sfn.redrive_execution(executionArn=arn)
    done = wait_until(sfn, arn)
    types = [e["type"] for e in history(sfn, arn)]
    print("aborted then redriven:", done["status"], done["redriveCount"], types)
    assert (done["status"], done["redriveCount"]) == ("SUCCEEDED", 1), done
    assert types.count("ExecutionAborted") == 1  # recorded when it stopped, before the redrive
    assert types.index("ExecutionAborted") < types.index("ExecutionRedriven") < types.index("ExecutionSucceeded")


def test_redrive_of_a_timed_out_execution(aws: dict[str, Any]) -> None:
    """[API] TIMED_OUT executions are redrivable."""
    sfn = aws["stepfunctions"]
    script = ScriptedWorker(block=True)
    script.fixed = True
    lambda_.install_lambda_invoker(script)
    sm = machine(sfn, {"Work": lambda_task("worker", End=True)}, "Work", TimeoutSeconds=1)
    arn = start(sfn, sm)
    timed_out = wait_until(sfn, arn)
    assert (timed_out["status"], timed_out["redriveStatus"]) == ("TIMED_OUT", "REDRIVABLE"), timed_out
    script.release.set()
    sfn.redrive_execution(executionArn=arn)
    done = wait_until(sfn, arn)
    assert (done["status"], done["redriveCount"]) == ("SUCCEEDED", 1), done


def test_redrive_after_the_14_day_window_is_refused(aws: dict[str, Any], worker: ScriptedWorker) -> None:
    """[API] only executions that stopped "in the last 14 days"; [DESCRIBE] NOT_REDRIVABLE with the documented
    reason "Execution redrivable period exceeded". The server runs in this process, so the case moves the failed
    execution's stop date 15 days back in moto's backend instead of waiting two weeks."""
    sfn = aws["stepfunctions"]
    arn = start(sfn, machine(sfn, {"Work": lambda_task("worker", End=True)}, "Work"))
    failed = wait_until(sfn, arn)
    assert (failed["status"], failed["redriveStatus"]) == ("FAILED", "REDRIVABLE"), failed
    account, region = arn.split(":")[4], arn.split(":")[3]
    execution = stepfunctions_parser_backends[account][region].describe_execution(arn)
    execution.stop_date = failed["stopDate"] - datetime.timedelta(days=15)
    described = sfn.describe_execution(executionArn=arn)
    print("15 days after:", described["redriveStatus"], described.get("redriveStatusReason"))
    assert (described["redriveStatus"], described.get("redriveStatusReason")) == (
        "NOT_REDRIVABLE",
        "Execution redrivable period exceeded",
    ), described
    worker.fixed = True
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sfn.redrive_execution(executionArn=arn)
    assert error_code(exc) == "ExecutionNotRedrivable", exc.value.response
    assert (len(worker.calls), sfn.describe_execution(executionArn=arn)["redriveCount"]) == (1, 0)


def test_redrive_just_inside_the_14_day_window_is_allowed(aws: dict[str, Any], worker: ScriptedWorker) -> None:
    """[API] an execution that stopped 13 days ago is within "the last 14 days": it redrives."""
    sfn = aws["stepfunctions"]
    arn = start(sfn, machine(sfn, {"Work": lambda_task("worker", End=True)}, "Work"))
    failed = wait_until(sfn, arn)
    account, region = arn.split(":")[4], arn.split(":")[3]
    execution = stepfunctions_parser_backends[account][region].describe_execution(arn)
    execution.stop_date = failed["stopDate"] - datetime.timedelta(days=13)
    assert sfn.describe_execution(executionArn=arn)["redriveStatus"] == "REDRIVABLE"
    worker.fixed = True
    sfn.redrive_execution(executionArn=arn)
    done = wait_until(sfn, arn)
    assert (done["status"], done["redriveCount"]) == ("SUCCEEDED", 1), done


def test_redrive_of_an_execution_that_ended_in_a_fail_state_fails_again(aws: dict[str, Any]) -> None:
    """[API] the unsuccessful step of an execution caught into a Fail state is the Fail state itself."""
    sfn = aws["stepfunctions"]
    sm = machine(
        sfn,
        {
            "Work": {"Type": "Pass", "Next": "TaskFailed"},
            "TaskFailed": {"Type": "Fail", "Error": "TaskFailed", "Cause": "caught"},
        },
        "Work",
    )
    arn = start(sfn, sm)
    assert wait_until(sfn, arn)["status"] == "FAILED"
    sfn.redrive_execution(executionArn=arn)
    again = wait_until(sfn, arn)
    events = history(sfn, arn)
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    print("fail state redriven:", again["status"], again["error"], entered)
    assert (again["status"], again["error"], again["redriveCount"]) == ("FAILED", "TaskFailed", 1)
    assert entered == ["Work", "TaskFailed", "TaskFailed"]  # Work (succeeded) not rerun
    assert again["redriveStatus"] == "REDRIVABLE"


def test_redrive_of_an_unknown_execution(aws: dict[str, Any]) -> None:
    """[API] ExecutionDoesNotExist."""
    sfn = aws["stepfunctions"]
    sm = machine(sfn, {"P": {"Type": "Pass", "End": True}}, "P")
    unknown = sm.replace(":stateMachine:", ":execution:") + ":never-started"
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        sfn.redrive_execution(executionArn=unknown)
    assert error_code(exc) == "ExecutionDoesNotExist"


def test_list_executions_redrive_filter_and_counts(aws: dict[str, Any], worker: ScriptedWorker) -> None:
    """[LIST] redriveFilter, and each item's redriveCount / redriveDate."""
    sfn = aws["stepfunctions"]
    sm = three_steps(sfn)
    redriven, plain = start(sfn, sm, name="redriven"), start(sfn, sm, name="plain")
    wait_until(sfn, redriven), wait_until(sfn, plain)
    worker.fixed = True
    sfn.redrive_execution(executionArn=redriven)
    wait_until(sfn, redriven)

    def names(**kw: Any) -> dict[str, Any]:
        return {e["name"]: e for e in sfn.list_executions(stateMachineArn=sm, **kw)["executions"]}

    assert set(names(redriveFilter="REDRIVEN")) == {"redriven"}
    assert set(names(redriveFilter="NOT_REDRIVEN")) == {"plain"}
    every = names()
    assert every["redriven"]["redriveCount"] == 1 and "redriveDate" in every["redriven"]
    assert every["plain"]["redriveCount"] == 0 and "redriveDate" not in every["plain"]


def test_aws_cli_redrive_execution(aws: dict[str, Any], worker: ScriptedWorker, endpoint: str) -> None:
    """``aws stepfunctions redrive-execution --endpoint-url`` works against the local endpoint (the real AWS CLI when
    installed, else its operation through botocore: tests/parity/aws_cli.py)."""
    sfn = aws["stepfunctions"]
    arn = start(sfn, three_steps(sfn))
    wait_until(sfn, arn)
    worker.fixed = True
    answer = aws_cli.run(endpoint, "stepfunctions", "redrive-execution", execution_arn=arn)
    print("aws stepfunctions redrive-execution:", aws_cli.describe(), answer)
    assert "redriveDate" in answer
    assert wait_until(sfn, arn)["status"] == "SUCCEEDED"
