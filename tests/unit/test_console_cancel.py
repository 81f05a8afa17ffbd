"""The console's cancel (taskrail/console.py) takes the storage-first path of the API: ``DELETE /tasks/{id}`` as
the task's owner, whose condition decides, and the cancel pipe stops the execution. No write of its own."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import pytest

from taskrail.client import ApiError
from taskrail.console import ConsoleDependencies, ConsoleError, ConsoleService

ARN = "arn:aws:states:us-east-1:123456789012:execution:task-lifecycle:t-1"
OTHER_ARN = "arn:aws:states:us-east-1:123456789012:execution:task-lifecycle:t-1-r1"
OWNER = "AIDALOCALALICE000001"


@dataclass
class Info:
    api_url: str = "http://127.0.0.1:1"
    tasks_table: str = "Tasks"
    state_machine_arn: str = "arn:aws:states:us-east-1:123456789012:stateMachine:task-lifecycle"


@dataclass
class FakeStepFunctions:
    statuses: dict[str, str]
    stopped: list[str] = field(default_factory=list)

    def describe_execution(self, executionArn: str) -> dict[str, Any]:
        return {"executionArn": executionArn, "status": self.statuses[executionArn], "input": json.dumps(["t-1"])}

    def stop_execution(self, executionArn: str, **_: Any) -> dict[str, Any]:
        self.stopped.append(executionArn)
        self.statuses[executionArn] = "ABORTED"
        return {}


class ReadOnlyTable:
    """The Tasks table as the console may use it: reads only (any write is an AttributeError)."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        self.item = item

    def get_item(self, **_: Any) -> dict[str, Any]:
        if self.item is None:
            return {}
        return {"Item": {k: {"S": v} for k, v in self.item.items()}}


@dataclass
class OwnerApi:
    """The API signed as the task's owner: its cancel stores CANCELLED under its condition, and the cancel pipe
    (modelled here) then stops the task's execution."""

    table: ReadOnlyTable
    sfn: FakeStepFunctions
    cancelled: list[str] = field(default_factory=list)

    def cancel(self, task_id: str) -> dict[str, Any]:
        self.cancelled.append(task_id)
        assert self.table.item is not None
        self.table.item["status"] = "CANCELLED"
        self.sfn.statuses[self.table.item["executionArn"]] = "ABORTED"
        return {"taskId": task_id, "status": "CANCELLED"}


@dataclass
class Console:
    sfn: FakeStepFunctions
    table: ReadOnlyTable
    api: OwnerApi
    owners: list[str] = field(default_factory=list)

    def service(self, *, owned_locally: bool = True) -> ConsoleService:
        def owner_client(owner: str) -> Any:
            self.owners.append(owner)
            return self.api if owned_locally else None

        clients = {"stepfunctions": self.sfn, "dynamodb": self.table}
        deps = ConsoleDependencies(
            info=Info,
            aws=clients.__getitem__,
            operator=lambda: pytest.fail("a cancel never replays"),
            owner_client=owner_client,
            sleep=lambda _: None,
        )
        return ConsoleService(deps)


def console_with(task: dict[str, Any] | None, statuses: dict[str, str]) -> Console:
    sfn, table = FakeStepFunctions(statuses), ReadOnlyTable(task)
    return Console(sfn, table, OwnerApi(table, sfn))


def test_a_console_cancel_is_the_owners_api_cancel_and_the_pipe_stops_the_execution():
    # Given a task running in ARN
    console = console_with({"status": "RUNNING", "executionArn": ARN, "userId": OWNER}, {ARN: "RUNNING"})

    # When the console is asked to stop ARN
    answer = console.service().stop(ARN)

    # Then the task's owner cancelled it through the API, and the console itself stopped nothing
    assert console.owners == [OWNER]
    assert console.api.cancelled == ["t-1"]
    assert console.sfn.stopped == []
    assert console.sfn.statuses[ARN] == "ABORTED"
    assert answer == {"executionArn": ARN, "stopped": True, "taskId": "t-1", "taskStatus": "CANCELLED"}


def test_a_cancel_the_api_condition_refuses_reports_the_stored_status_and_still_stops_the_execution():
    # Given a running task that finishes between the console's read and the API's conditional write
    console = console_with({"status": "RUNNING", "executionArn": ARN, "userId": OWNER}, {ARN: "RUNNING"})

    def finished_meanwhile(task_id: str) -> dict[str, Any]:
        console.api.cancelled.append(task_id)
        console.table.item = {"status": "SUCCEEDED", "executionArn": ARN, "userId": OWNER}
        raise ApiError(409, "task is already SUCCEEDED; only QUEUED or RUNNING tasks can be cancelled")

    console.api.cancel = finished_meanwhile  # type: ignore[method-assign]

    # When the console is asked to stop the execution
    answer = console.service().stop(ARN)

    # Then the API's condition decided (the task stays SUCCEEDED), and the execution asked for is stopped
    assert console.api.cancelled == ["t-1"]
    assert answer["taskStatus"] == "SUCCEEDED"
    assert console.sfn.stopped == [ARN]


def test_an_execution_its_task_has_moved_on_from_is_stopped_and_the_task_left_alone():
    # Given a task now RUNNING in another execution (a replay claimed it)
    console = console_with(
        {"status": "RUNNING", "executionArn": OTHER_ARN, "userId": OWNER}, {ARN: "RUNNING", OTHER_ARN: "RUNNING"}
    )

    answer = console.service().stop(ARN)

    assert console.api.cancelled == []
    assert console.sfn.stopped == [ARN]
    assert console.sfn.statuses[OTHER_ARN] == "RUNNING"
    assert answer["taskStatus"] == "RUNNING"


def test_a_task_no_local_user_owns_is_refused_with_a_409_and_nothing_stopped():
    console = console_with({"status": "RUNNING", "executionArn": ARN, "userId": "AIDASOMEONEELSE"}, {ARN: "RUNNING"})

    with pytest.raises(ConsoleError) as refused:
        console.service(owned_locally=False).stop(ARN)

    assert refused.value.status == HTTPStatus.CONFLICT
    assert "not owned by a local user" in refused.value.message
    assert (console.api.cancelled, console.sfn.stopped) == ([], [])


def test_an_execution_that_is_not_running_is_a_409():
    console = console_with({"status": "CANCELLED", "executionArn": ARN, "userId": OWNER}, {ARN: "ABORTED"})

    with pytest.raises(ConsoleError) as refused:
        console.service().stop(ARN)

    assert refused.value.status == HTTPStatus.CONFLICT
    assert "not RUNNING" in refused.value.message
