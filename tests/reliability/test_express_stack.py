"""Tasks end to end on an EXPRESS local stack (`TASKRAIL_LIFECYCLE_TYPE=EXPRESS taskrail local up`, the template
synthesized with ``-c lifecycleType=EXPRESS``): a success, two rejections (bad params; a type longer than Express's
5 minutes, refused at Validate), a failure with its DLQ message, a cancel and a replay; every task ends terminal and
is accounted for. The local Step Functions answers for Express executions as AWS does (no DescribeExecution, no
history, no list: services/stepfunctions_express.py), so what taskrail reads of an execution here -- `taskrail
watch`'s state and retries, `taskrail history` -- comes from the lifecycle's CloudWatch Logs group.

One stack for the module, in its own process (moto is process-wide; the e2e package's stack is STANDARD).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from infra.synth import CDK_OUT, cdk_out_for
from task_types.diagnostic_poison import FIX_MARKER_KEY
from taskrail.cli import app, local_reach
from taskrail.client import ApiError, TaskrailClient
from taskrail.execution_logs import is_express_arn
from taskrail.local.stack import StackInfo
from taskrail.operator import Operator
from tests.e2e.polling import wait_for
from tests.local_up import start_local_up, stop_local_up
from workflows.lifecycle_type import EXPRESS

TERMINAL = {"SUCCEEDED", "FAILED", "REJECTED", "CANCELLED"}
WAIT_SECONDS = 120


class ExpressStack:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.info = StackInfo.load(state)
        self.client: TaskrailClient
        self.client, self.aws = local_reach("alice", state)
        self.operator = Operator.over_aws(self.client, self.aws)
        self.tasks: dict[str, str] = {}

    def cli(self, *args: str) -> Any:
        result = CliRunner().invoke(app, [*args, "--local-state", str(self.state)], catch_exceptions=False)
        print(f"$ taskrail {' '.join(args)}\n{result.output}")
        return result


@pytest.fixture(scope="module")
def express(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExpressStack]:
    folder = tmp_path_factory.mktemp("express")
    env = {
        **os.environ,
        "TASKRAIL_LIFECYCLE_TYPE": EXPRESS,
        # the EXPRESS synth's own folder (the default one holds the STANDARD template other tests use)
        "TASKRAIL_CDK_OUT": str(cdk_out_for(EXPRESS, CDK_OUT)),
    }
    with (folder / "up.log").open("w") as log:
        up = start_local_up(folder / "local.json", log, env=env)
        try:
            stack = ExpressStack(folder / "local.json")
            _run_every_kind_of_task(stack)
            yield stack
        finally:
            stop_local_up(up)


def _run_every_kind_of_task(stack: ExpressStack) -> None:
    client = stack.client
    submit = client.submit
    stack.tasks = {
        "succeeded": submit("text.stats", {"text": "express a b a"})["taskId"],
        "invalid": submit("text.stats", {"text": "x", "top": 1000})["taskId"],
        "too-long": submit("diagnostic.sleep", {"seconds": 1})["taskId"],
        "failed": submit("diagnostic.poison", {})["taskId"],
        "replayed": submit("diagnostic.poison", {})["taskId"],
        "cancelled": submit("diagnostic.flaky", {"failures": 2})["taskId"],
    }
    # Cancelled at once: QUEUED or RUNNING (no StopExecution on EXPRESS: the CANCELLED status alone ends the work)
    assert client.cancel(stack.tasks["cancelled"])["status"] == "CANCELLED"
    first = [t for s, t in stack.tasks.items() if s != "replayed"]
    client.wait([*first, stack.tasks["replayed"]], timeout=WAIT_SECONDS)
    # The replay: the fix, then `taskrail replay` (a new execution -r1 from the DLQ message; EXPRESS has no redrive)
    replayed = stack.tasks["replayed"]
    wait_for(lambda: _dlq_holds(stack, replayed), timeout=30, what="the replayed task's DLQ message")
    stack.aws("s3").put_object(Bucket=stack.info.results_bucket, Key=FIX_MARKER_KEY, Body=b"fixed")
    outcome = stack.operator.replay_tasks([replayed])
    print("replay:", outcome)
    assert [(o.action, o.started) for o in outcome] == [("started", True)]
    wait_for(lambda: client.get(replayed)["status"] == "SUCCEEDED", timeout=WAIT_SECONDS, what="the replay")


def _ended(stack: ExpressStack, arn: str) -> bool:
    return any(e["type"] in {"ExecutionSucceeded", "ExecutionFailed"} for e in stack.operator.execution_events(arn))


def _dlq_holds(stack: ExpressStack, task_id: str) -> bool:
    return any(m.get("taskId") == task_id for m in stack.operator.dlq_messages(10))


def test_a_task_succeeds_and_watch_reads_its_state_from_the_logs(express: ExpressStack) -> None:
    task_id = express.tasks["succeeded"]
    view = express.operator.progress(task_id)
    print(view)
    assert view["status"] == "SUCCEEDED" and is_express_arn(view["executionArn"])
    assert view["state"] == "TaskSucceeded"  # the last state entered, as the lifecycle's log group has it
    assert view["retries"] == 0
    assert express.operator.result_value(task_id)["words"] == 4


def test_history_of_an_express_task_lists_its_logged_execution_and_says_where_it_comes_from(
    express: ExpressStack,
) -> None:
    task_id = express.tasks["succeeded"]
    result = express.cli("history", task_id)
    assert result.exit_code == 0
    assert "Step Functions keeps no history of it" in result.output and "CloudWatch Logs" in result.output
    answer = json.loads(express.cli("history", task_id, "--json").output)
    assert [e["status"] for e in answer["executions"]] == ["SUCCEEDED"]
    assert answer["events"][0]["type"] == "ExecutionStarted" and answer["events"][-1]["type"] == "ExecutionSucceeded"
    states = [e["state"] for e in answer["events"] if e["type"].endswith("StateEntered")]
    assert states[-2:] == ["MarkSucceeded", "TaskSucceeded"]


def test_bad_params_and_a_type_too_long_for_express_are_rejected_with_the_reason(express: ExpressStack) -> None:
    invalid = express.client.get(express.tasks["invalid"])
    too_long = express.client.get(express.tasks["too-long"])
    print(invalid.get("cause"), "|", too_long.get("cause"))
    assert invalid["status"] == "REJECTED" and "top" in str(invalid.get("cause"))
    assert too_long["status"] == "REJECTED"
    assert "diagnostic.sleep may run 840 s a try" in str(too_long.get("cause"))
    assert "this EXPRESS lifecycle leaves for processing" in str(too_long.get("cause"))


def test_a_failed_task_has_exactly_one_dlq_message(express: ExpressStack) -> None:
    task_id = express.tasks["failed"]
    assert express.client.get(task_id)["status"] == "FAILED"
    wait_for(lambda: _dlq_holds(express, task_id), timeout=30, what="the DLQ message")
    messages = [m for m in express.operator.dlq_messages(10) if m.get("taskId") == task_id]
    print(messages)
    assert len(messages) == 1 and messages[0]["error"] == "PermanentTaskError"


def test_a_cancelled_task_stays_cancelled_and_its_execution_ends(express: ExpressStack) -> None:
    task_id = express.tasks["cancelled"]
    task = express.client.get(task_id)
    print("cancelled while", "RUNNING" if task.get("executionArn") else "QUEUED", task.get("executionArn"))
    assert task["status"] == "CANCELLED"
    with pytest.raises(ApiError) as refused:  # no result, ever
        express.client.result(task_id)
    assert refused.value.status == 409
    if task.get("executionArn"):  # it was RUNNING when cancelled: its execution ended on its own
        arn = task["executionArn"]
        wait_for(lambda: _ended(express, arn), timeout=WAIT_SECONDS, what="the cancelled task's execution to end")
        print([e["type"] for e in express.operator.execution_events(arn)][-3:])
    assert express.client.get(task_id)["status"] == "CANCELLED"


def test_a_replayed_task_succeeds_in_a_new_execution(express: ExpressStack) -> None:
    task_id = express.tasks["replayed"]
    task = express.client.get(task_id)
    answer = json.loads(express.cli("history", task_id, "--json").output)
    print([(e["name"], e["origin"], e["status"]) for e in answer["executions"]])
    assert task["status"] == "SUCCEEDED"
    # the pipe's FAILED execution has a random name and logged no input: once the replay holds the task, only its
    # own -r1 is found by the task (and `taskrail history` says so)
    assert [(e["name"], e["origin"], e["status"]) for e in answer["executions"]] == [
        (f"{task_id}-r1", "replay", "SUCCEEDED")
    ]
    assert "its first execution (the pipe's" in express.cli("history", task_id).output
    assert not _dlq_holds(express, task_id)


def test_every_task_is_terminal_and_accounted_for(express: ExpressStack) -> None:
    listed = {t["taskId"]: t["status"] for t in express.client.find_page(None, limit=None).tasks}
    print(listed)
    assert set(listed) == set(express.tasks.values())
    assert {situation: listed[task_id] for situation, task_id in express.tasks.items()} == {
        "succeeded": "SUCCEEDED",
        "invalid": "REJECTED",
        "too-long": "REJECTED",
        "failed": "FAILED",
        "replayed": "SUCCEEDED",
        "cancelled": "CANCELLED",
    }
    assert set(listed.values()) <= TERMINAL


def test_the_console_shows_an_express_execution_from_its_logs_and_says_why_it_lists_none(express: ExpressStack) -> None:
    import requests

    arn = express.client.get(express.tasks["succeeded"])["executionArn"]
    console = express.info.console_url.rstrip("/")
    shown = requests.get(f"{console}/api/executions/{quote(arn, safe='')}", timeout=10)
    listed = requests.get(f"{console}/api/executions", timeout=10)
    print(shown.status_code, listed.status_code, listed.text[:300])
    assert shown.status_code == 200
    body = shown.json()
    assert body["execution"]["status"] == "SUCCEEDED"
    assert [e["type"] for e in body["events"]][-1] == "ExecutionSucceeded"
    assert body["transitions"][-1] == ["MarkSucceeded", "TaskSucceeded"]
    # ListExecutions does not serve an EXPRESS machine (StateMachineTypeNotSupported): a 409 that says where to look
    assert listed.status_code == 409
    assert "CloudWatch Logs group" in listed.text
