"""The operator's replay, redrive and dead-letter reading (taskrail/operator) over in-memory ports: no AWS, no moto."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from queue_fakes import InMemoryQueue

from task_common.contract import replay_execution_name
from taskrail.client import ApiError, Endpoints
from taskrail.operator import Operator

ARN_PREFIX = "arn:aws:states:us-east-1:123456789012:execution:task-lifecycle"


class InMemoryDeadLetters(InMemoryQueue):
    """The DLQ with the lifecycle's message shape."""

    def add(self, task_id: str, error: str = "PermanentTaskError", *, sent_ms: int = 1_000, attempt: int = 1) -> None:
        body = {"taskId": task_id, "error": error, "cause": "boom", "attempt": attempt, "input": [task_id]}
        self.send(body, sent_ms=sent_ms)


class InMemoryTaskRecords:
    def __init__(self, **tasks: dict[str, Any]) -> None:
        self.items = {task_id: {"taskId": task_id, **item} for task_id, item in tasks.items()}
        self.requeued: list[str] = []

    def get(self, task_id: str) -> dict[str, Any] | None:
        item = self.items.get(task_id)
        return dict(item) if item else None

    def requeue_failed(self, task_id: str, execution_arn: str | None = None) -> bool:
        item = self.items[task_id]
        if item["status"] != "FAILED" or execution_arn not in (None, item.get("executionArn")):
            return False
        self.items[task_id] = {k: v for k, v in self.items[task_id].items() if k not in ("error", "cause")}
        self.items[task_id]["status"] = "QUEUED"
        self.requeued.append(task_id)
        return True


@dataclass
class InMemoryExecutions:
    started: dict[str, Any] = field(default_factory=dict)
    described: dict[str, dict[str, Any]] = field(default_factory=dict)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    redriven: list[tuple[str, str]] = field(default_factory=list)

    def start(self, name: str, execution_input: Any) -> bool:
        if name in self.started:
            return False
        self.started[name] = execution_input
        return True

    def describe(self, execution_arn: str) -> dict[str, Any]:
        return {"executionArn": execution_arn, **self.described[execution_arn]}

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.histories.get(execution_arn, [])

    def redrive(self, execution_arn: str, client_token: str) -> str | None:
        self.redriven.append((execution_arn, client_token))
        return None

    def supports_redrive(self) -> bool:
        return True


class OwnedTasks:
    """The API's owner check: the caller's tasks are found, any other id is a 404."""

    def __init__(self, **tasks: dict[str, Any]) -> None:
        self.tasks = {task_id: {"taskId": task_id, **task} for task_id, task in tasks.items()}

    def get(self, task_id: str) -> dict[str, Any]:
        if task_id not in self.tasks:
            raise ApiError(404, "task not found")
        return self.tasks[task_id]


class InMemoryResults:
    def __init__(self, objects: dict[tuple[str, str], Any]) -> None:
        self.objects = objects

    def read_json(self, bucket: str, key: str) -> Any:
        return self.objects[(bucket, key)]


@dataclass
class World:
    queue: InMemoryDeadLetters
    tasks: InMemoryTaskRecords
    executions: InMemoryExecutions
    owned: OwnedTasks
    results: InMemoryResults = field(default_factory=lambda: InMemoryResults({}))

    def operator(self, *, is_local: bool = True) -> Operator:
        endpoints = Endpoints("https://api.invalid", "us-east-1", "Tasks", "results", "arn:sm", "https://dlq")
        return Operator(
            endpoints,
            owned=self.owned,
            tasks=self.tasks,
            executions=self.executions,
            dead_letters=self.queue,
            results=self.results,
            is_local=is_local,
        )


@pytest.fixture
def world() -> World:
    return World(InMemoryDeadLetters(), InMemoryTaskRecords(), InMemoryExecutions(), OwnedTasks())


def entered(number: int, name: str) -> dict[str, Any]:
    return {"id": number, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name}}


def test_a_caught_failure_is_queued_again_and_started_as_its_replay_execution_then_its_message_deleted(world):
    # Given a failed task (attempt 1) with its message in the DLQ
    world.tasks.items["t-1"] = {"taskId": "t-1", "status": "FAILED", "attempt": 1, "error": "E", "cause": "c"}
    world.queue.add("t-1")

    # When the operator replays the DLQ
    outcomes = world.operator().replay_dlq()

    # Then the task is QUEUED (error and cause gone), t-1-r1 started with the stored input, the message deleted
    assert [(o.task_id, o.action, o.execution_name, o.started) for o in outcomes] == [
        ("t-1", "started", "t-1-r1", True)
    ]
    assert world.tasks.items["t-1"] == {"taskId": "t-1", "status": "QUEUED", "attempt": 1}
    assert world.executions.started == {replay_execution_name("t-1", 1): ["t-1"]}
    assert world.queue.messages == {}


def test_a_replay_whose_execution_exists_already_starts_nothing_and_drops_the_message(world):
    # Given a message whose replay execution was started by an earlier run that died before deleting it
    world.tasks.items["t-1"] = {"taskId": "t-1", "status": "QUEUED", "attempt": 1}
    world.executions.started["t-1-r1"] = ["t-1"]
    world.queue.add("t-1")

    outcomes = world.operator().replay_dlq()

    assert [(o.action, o.detail) for o in outcomes] == [("already-replayed", "already replayed")]
    assert world.executions.started == {"t-1-r1": ["t-1"]}
    assert world.queue.messages == {}


@pytest.mark.parametrize(
    ("stored", "detail"),
    [(None, "task no longer exists; message dropped"), ({"status": "SUCCEEDED"}, "already SUCCEEDED; message dropped")],
)
def test_a_message_of_a_task_that_is_gone_or_moved_on_is_dropped_without_a_start(world, stored, detail):
    if stored is not None:
        world.tasks.items["t-1"] = {"taskId": "t-1", **stored}
    world.queue.add("t-1")

    outcomes = world.operator().replay_dlq()

    assert [(o.action, o.detail) for o in outcomes] == [("dropped", detail)]
    assert world.executions.started == {}
    assert world.queue.messages == {}


def test_a_dry_run_says_what_it_would_start_and_changes_nothing(world):
    world.tasks.items["t-1"] = {"taskId": "t-1", "status": "FAILED", "attempt": 2}
    world.queue.add("t-1", attempt=2)

    outcomes = world.operator().replay_dlq(dry_run=True)

    assert [(o.action, o.execution_name, o.detail) for o in outcomes] == [
        ("would-start", "t-1-r2", "would replay attempt 3")
    ]
    assert world.tasks.items["t-1"]["status"] == "FAILED"
    assert world.executions.started == {}
    assert world.queue.visible_task_ids() == ["t-1"]


def test_a_filtered_replay_leaves_the_other_messages_visible_in_the_queue(world):
    for task_id, error, sent in (("t-1", "PermanentTaskError", 1_000), ("t-2", "Sandbox.Timedout", 1_000)):
        world.tasks.items[task_id] = {"taskId": task_id, "status": "FAILED", "attempt": 1}
        world.queue.add(task_id, error, sent_ms=sent)
    world.tasks.items["t-3"] = {"taskId": "t-3", "status": "FAILED", "attempt": 1}
    world.queue.add("t-3", "PermanentTaskError", sent_ms=5_000)

    outcomes = world.operator().replay_dlq(errors={"PermanentTaskError"}, since_ms=2_000)

    assert [o.task_id for o in outcomes] == ["t-3"]
    assert sorted(world.queue.visible_task_ids()) == ["t-1", "t-2"]
    assert world.queue.hidden == set()


def test_somebody_elses_task_is_refused_like_a_missing_one_and_its_message_stays(world):
    # Given another user's failed task in the DLQ: the API does not show it to this caller
    world.tasks.items["theirs"] = {"taskId": "theirs", "status": "FAILED", "attempt": 1}
    world.queue.add("theirs")

    outcomes = world.operator().replay_tasks(["theirs", "missing"])

    assert [(o.task_id, o.action, o.detail) for o in outcomes] == [
        ("theirs", "refused", "task not found (or not yours)"),
        ("missing", "refused", "task not found (or not yours)"),
    ]
    assert world.executions.started == {}
    assert world.tasks.requeued == []
    assert world.queue.visible_task_ids() == ["theirs"]


def test_an_execution_that_failed_outside_the_catch_path_is_redriven_locally_as_on_aws(world):
    # Given my task FAILED by the failure recorder after its execution timed out in ProcessTask
    arn = f"{ARN_PREFIX}:t-1"
    world.owned.tasks["t-1"] = {"taskId": "t-1", "status": "FAILED", "executionArn": arn}
    world.executions.described[arn] = {"status": "TIMED_OUT", "redriveCount": 0}
    world.executions.histories[arn] = [entered(2, "ClaimTask"), entered(3, "ProcessTask")]

    local = world.operator(is_local=True).replay_tasks(["t-1"])
    world.executions.described[arn]["redriveCount"] = 1
    on_aws = world.operator(is_local=False).replay_tasks(["t-1"])

    # Then both redrive (the local stack has RedriveExecution), once per redrive count
    assert [(o.action, o.started) for o in local + on_aws] == [("redriven", True), ("redriven", True)]
    assert [a for a, _ in world.executions.redriven] == [arn, arn]
    assert world.executions.redriven[0][1] != world.executions.redriven[1][1]


def test_a_failure_caught_into_a_fail_state_without_a_message_is_not_redriven(world):
    # Given an execution of the earlier definition, which caught failures into the Fail state TaskFailed
    arn = f"{ARN_PREFIX}:t-1"
    world.owned.tasks["t-1"] = {"taskId": "t-1", "status": "FAILED", "executionArn": arn}
    world.executions.described[arn] = {"status": "FAILED"}
    fail_state = {"id": 3, "type": "FailStateEntered", "stateEnteredEventDetails": {"name": "TaskFailed"}}
    world.executions.histories[arn] = [entered(2, "ProcessTask"), fail_state]

    outcomes = world.operator(is_local=False).replay_tasks(["t-1"])

    assert [o.action for o in outcomes] == ["nothing-to-replay"]
    assert "caught into TaskFailed: a redrive would run TaskFailed again" in outcomes[0].detail
    assert world.executions.redriven == []


def test_the_dlq_summary_groups_messages_by_error_and_leaves_them_visible(world):
    for task_id, error in (("t-1", "A"), ("t-2", "B"), ("t-3", "B")):
        world.queue.add(task_id, error)

    summary = world.operator().dlq_summary(peek=1)

    assert (summary["count"], summary["inFlight"]) == (3, 0)
    assert [(g["error"], g["count"], g["taskIds"]) for g in summary["groups"]] == [
        ("B", 2, ["t-2", "t-3"]),
        ("A", 1, ["t-1"]),
    ]
    assert [m["taskId"] for m in summary["messages"]] == ["t-1"]
    assert summary["messages"][0]["sentAt"] == "1970-01-01T00:00:01.000Z"  # the API's one timestamp format
    assert sorted(world.queue.visible_task_ids()) == ["t-1", "t-2", "t-3"]


def test_a_result_behind_a_claim_check_reference_is_read_from_where_it_points(world):
    world.results.objects[("results", "tasks/t-1/result.json")] = {"resultRef": "s3://results/tasks/t-1/body.json"}
    world.results.objects[("results", "tasks/t-1/body.json")] = {"words": 60_000}
    world.results.objects[("results", "tasks/t-2/result.json")] = {"result": {"words": 3}}

    assert world.operator().result_value("t-1") == {"words": 60_000}
    assert world.operator().result_value("t-2") == {"words": 3}


def test_progress_reads_the_state_and_retries_from_the_history_reader(world):
    arn = f"{ARN_PREFIX}:t-1"
    world.owned.tasks["t-1"] = {"taskId": "t-1", "status": "RUNNING", "executionArn": arn, "createdAt": 1_000}
    world.executions.histories[arn] = [
        entered(1, "ProcessTask"),
        {"id": 2, "type": "TaskScheduled"},
        {"id": 3, "type": "TaskTimedOut", "taskTimedOutEventDetails": {"error": "States.Timeout"}},
        {"id": 4, "type": "TaskScheduled"},
    ]

    view = world.operator().progress("t-1")

    # A timed-out attempt run again by the Retry is a retry (taskrail/history.py), as the console counts it
    assert (view["state"], view["retries"], view["status"]) == ("ProcessTask", 1, "RUNNING")
