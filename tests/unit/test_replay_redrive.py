"""`taskrail replay ID` redrives or replays (taskrail/operator/replay.py), over in-memory ports that model the
workflow's two gates: a new execution claims QUEUED → RUNNING, a redriven one resumes FAILED → RUNNING only while
the task is FAILED in that same execution. No AWS, no moto."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from queue_fakes import InMemoryQueue

from taskrail.client import ApiError
from taskrail.operator.replay import REFUSED_ACTIONS, replay_dlq, replay_tasks

MACHINE = "arn:aws:states:us-east-1:123456789012:execution:task-lifecycle"


def arn_of(name: str) -> str:
    return f"{MACHINE}:{name}"


@dataclass
class Platform:
    """The Tasks table, the lifecycle's executions and the DLQ, with the workflow's gates.

    ``runs`` records every time an execution got the task to run (a claim or a redrive's resume): the property
    under test is that one failure is run again at most once. Executions run when :meth:`advance` says so, so a
    test can interleave the operator's calls with the workflow's steps."""

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    queue: InMemoryQueue = field(default_factory=InMemoryQueue)
    pending: list[tuple[str, str]] = field(default_factory=list)  # (arn, "claim" | "resume")
    runs: list[tuple[str, str]] = field(default_factory=list)  # (arn, "claim" | "resume")
    redrive_calls: list[tuple[str, str]] = field(default_factory=list)
    on_requeue_read: Any = None  # called between a replay's read of the item and its requeue
    lifecycle_type: str = "STANDARD"  # EXPRESS: Step Functions neither describes nor redrives its executions

    # -- a failed task, as the workflow and the outbox leave it -------------------------------------------

    def failed_task(self, task_id: str = "t-1", *, state: str = "ProcessTask", status: str = "FAILED") -> str:
        arn = arn_of(task_id)
        self.items[task_id] = {"taskId": task_id, "status": status, "attempt": 1, "executionArn": arn}
        self.executions[arn] = {"status": "FAILED", "redriveCount": 0, "redriveStatus": "REDRIVABLE"}
        self.histories[arn] = [entered(2, "ClaimTask"), entered(3, "ValidateParameters"), entered(4, state)]
        if status == "FAILED":
            self.queue.send({"taskId": task_id, "executionArn": arn, "attempt": 1, "input": [task_id], "error": "E"})
        return arn

    # -- TaskRecords ---------------------------------------------------------------------------------------

    def get(self, task_id: str) -> dict[str, Any] | None:
        item = self.items.get(task_id)
        if item is not None and self.on_requeue_read is not None:
            hook, self.on_requeue_read = self.on_requeue_read, None
            copy = dict(item)
            hook()
            return copy
        return dict(item) if item else None

    def requeue_failed(self, task_id: str, execution_arn: str | None = None) -> bool:
        item = self.items[task_id]
        if item["status"] != "FAILED" or execution_arn not in (None, item.get("executionArn")):
            return False
        self.items[task_id]["status"] = "QUEUED"
        return True

    # -- Executions ----------------------------------------------------------------------------------------

    def start(self, name: str, execution_input: Any) -> bool:
        arn = arn_of(name)
        if arn in self.executions:
            return False
        self.executions[arn] = {"status": "RUNNING", "redriveCount": 0, "input": execution_input}
        self.pending.append((arn, "claim"))
        return True

    def describe(self, execution_arn: str) -> dict[str, Any]:
        # "Executions of an EXPRESS state machine aren't supported by DescribeExecution" (its API reference)
        assert self.lifecycle_type == "STANDARD", "DescribeExecution of an EXPRESS execution"
        return {"executionArn": execution_arn, **self.executions[execution_arn]}

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.histories.get(execution_arn, [])

    def redrive(self, execution_arn: str, client_token: str) -> str | None:
        """RedriveExecution as AWS: a FAILED/TIMED_OUT/ABORTED execution becomes RUNNING again (or a refusal)."""
        execution = self.executions[execution_arn]
        if execution["status"] not in ("FAILED", "TIMED_OUT", "ABORTED"):
            return f"ExecutionNotRedrivable: execution is {execution['status']}"
        self.redrive_calls.append((execution_arn, client_token))
        execution["status"] = "RUNNING"
        execution["redriveCount"] += 1
        self.pending.append((execution_arn, "resume"))
        return None

    def supports_redrive(self) -> bool:
        return self.lifecycle_type == "STANDARD"

    # -- the workflow's gates ------------------------------------------------------------------------------

    def advance(self) -> None:
        """Every pending execution takes its gate: ClaimTask, or the redriven ProcessTask's resume."""
        while self.pending:
            arn, gate = self.pending.pop(0)
            task_id = self.executions[arn].get("input", [arn.rsplit(":", 1)[-1]])[0]
            item = self.items[task_id]
            if gate == "claim" and item["status"] == "QUEUED":
                item.update(status="RUNNING", executionArn=arn, attempt=item["attempt"] + 1)
            elif gate == "resume" and item["status"] == "FAILED" and item["executionArn"] == arn:
                item.update(status="RUNNING", redriveCount=self.executions[arn]["redriveCount"])
            else:
                self.executions[arn]["status"] = "SUCCEEDED"  # TaskAlreadyClaimed / TaskWasCancelled: quietly
                continue
            self.runs.append((arn, gate))
            item["status"] = "SUCCEEDED"
            self.executions[arn]["status"] = "SUCCEEDED"


class Owned:
    def __init__(self, platform: Platform, mine: set[str] | None = None) -> None:
        self.platform, self.mine = platform, mine

    def get(self, task_id: str) -> dict[str, Any]:
        item = self.platform.items.get(task_id)
        if item is None or (self.mine is not None and task_id not in self.mine):
            raise ApiError(404, "task not found")
        return dict(item)


def entered(number: int, name: str, event_type: str = "TaskStateEntered") -> dict[str, Any]:
    return {"id": number, "type": event_type, "stateEnteredEventDetails": {"name": name}}


def replay(platform: Platform, *task_ids: str, dry_run: bool = False, owned: Owned | None = None) -> list[Any]:
    return replay_tasks(
        task_ids,
        owned=owned or Owned(platform),
        queue=platform.queue,
        tasks=platform,
        executions=platform,
        dry_run=dry_run,
    )


def replay_queue(platform: Platform) -> list[Any]:
    return replay_dlq(None, queue=platform.queue, tasks=platform, executions=platform)


@pytest.fixture
def platform() -> Platform:
    return Platform()


# -- which one it does ---------------------------------------------------------------------------------------


def test_a_task_that_failed_at_process_task_is_redriven_in_the_same_execution_and_its_message_retired(platform):
    # Given a task whose execution failed at ProcessTask (uncaught), its DLQ message sent by the outbox
    arn = platform.failed_task()

    # When its owner replays it
    [outcome] = replay(platform, "t-1")
    platform.advance()

    # Then the same execution was redriven (once, with a client token), no new one started, the message deleted
    assert (outcome.action, outcome.execution_name, outcome.started) == ("redriven", "t-1", True)
    assert "ended FAILED in ProcessTask" in outcome.detail and "same execution (redrive 1)" in outcome.detail
    assert "DLQ messages retired: 1" in outcome.detail
    assert [a for a, _ in platform.redrive_calls] == [arn]
    assert len(platform.redrive_calls[0][1]) == 64
    assert platform.runs == [(arn, "resume")]
    assert set(platform.executions) == {arn}
    assert platform.queue.messages == {}
    assert platform.items["t-1"]["status"] == "SUCCEEDED"


def test_a_dry_run_says_it_would_redrive_and_changes_nothing(platform):
    platform.failed_task()

    [outcome] = replay(platform, "t-1", dry_run=True)

    assert outcome.action == "would-redrive"
    assert platform.redrive_calls == [] and len(platform.queue.messages) == 1


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda p, arn: p.executions[arn].update(redriveStatus="NOT_REDRIVABLE",
                                                 redriveStatusReason="Execution is not redrivable after 14 days"),
         "after 14 days"),
        (lambda p, arn: p.histories[arn].append(entered(5, "TaskFailed", "FailStateEntered")),
         "caught into TaskFailed"),
    ],
    ids=["older-than-14-days", "caught-into-a-fail-state"],
)  # fmt: skip
def test_an_execution_that_cannot_be_redriven_usefully_gets_a_new_execution_from_the_dlq(platform, change, why):
    # Given a failed task whose execution Step Functions will not redrive, or whose redrive would rerun TaskFailed
    arn = platform.failed_task()
    change(platform, arn)

    # When it is replayed
    [outcome] = replay(platform, "t-1")
    platform.advance()

    # Then it started t-1-r1 as today, and says why it did not redrive
    assert (outcome.action, outcome.execution_name) == ("started", "t-1-r1")
    assert "new execution" in outcome.detail and why in outcome.detail
    assert platform.redrive_calls == []
    assert platform.runs == [(arn_of("t-1-r1"), "claim")]
    assert platform.queue.messages == {}


def test_an_express_lifecycles_failed_task_is_replayed_as_a_new_execution_without_asking_for_its_execution(platform):
    # Given an EXPRESS lifecycle (RedriveExecution and DescribeExecution do not serve its executions)
    platform.lifecycle_type = "EXPRESS"
    platform.failed_task()

    # When its owner replays the failed task
    [outcome] = replay(platform, "t-1")
    platform.advance()

    # Then a new execution runs it, from its DLQ message, and the failed execution was never described
    assert outcome.action == "started" and outcome.execution_name == "t-1-r1"
    assert "the lifecycle is EXPRESS, whose executions cannot be redriven" in outcome.detail
    assert platform.redrive_calls == []
    assert platform.runs == [(arn_of("t-1-r1"), "claim")]
    assert platform.queue.messages == {}


def test_a_rejected_task_is_not_replayable_because_its_input_is_invalid(platform):
    platform.failed_task(status="REJECTED")
    document = {"errorType": "ValidationFailed", "errorMessage": "text: field required", "stackTrace": ["  File …"]}
    platform.items["t-1"].update(error="ValidationFailed", cause=json.dumps(document))

    [outcome] = replay(platform, "t-1")

    assert outcome.action == "not-replayable" and outcome.action in REFUSED_ACTIONS
    assert "REJECTED: its input is invalid (ValidationFailed: text: field required)" in outcome.detail
    assert "not replayable" in outcome.detail and "stackTrace" not in outcome.detail
    assert platform.redrive_calls == [] and platform.runs == []


@pytest.mark.parametrize("status", ["SUCCEEDED", "CANCELLED", "QUEUED"])
def test_a_task_that_did_not_fail_has_nothing_to_replay(platform, status):
    arn = platform.failed_task(status=status)
    platform.executions[arn]["status"] = "ABORTED" if status == "CANCELLED" else "SUCCEEDED"

    [outcome] = replay(platform, "t-1")
    platform.advance()

    assert outcome.action == "nothing-to-replay" and outcome.action not in REFUSED_ACTIONS
    assert platform.redrive_calls == [] and platform.runs == []


def test_a_running_task_whose_execution_failed_waits_for_its_failure_to_be_recorded(platform):
    # Given the execution FAILED but the failure recorder has not written the task yet
    arn = platform.failed_task()
    platform.items["t-1"]["status"] = "RUNNING"
    platform.queue.messages.clear()

    [outcome] = replay(platform, "t-1")

    assert outcome.action == "nothing-to-replay"
    assert "still being recorded" in outcome.detail
    assert platform.redrive_calls == [] and platform.executions[arn]["status"] == "FAILED"


def test_somebody_elses_task_is_refused_and_left_alone(platform):
    platform.failed_task()

    [outcome] = replay(platform, "t-1", owned=Owned(platform, mine=set()))

    assert outcome.action == "refused"
    assert platform.redrive_calls == [] and len(platform.queue.messages) == 1


# -- a DLQ replay and a redrive never both run it ----------------------------------------------------------------


def test_a_dlq_replay_after_a_redrive_drops_the_message_and_starts_nothing(platform):
    # Given a task redriven from outside taskrail (the console's Redrive, `aws stepfunctions redrive-execution`):
    # its DLQ message is still in the queue
    arn = platform.failed_task()
    assert platform.redrive(arn, "console") is None
    platform.advance()

    # When the DLQ is replayed
    outcomes = replay_queue(platform)
    platform.advance()

    # Then the message is dropped: the redrive ran the task, once
    assert [o.action for o in outcomes] == ["dropped"]
    assert platform.runs == [(arn, "resume")]
    assert platform.queue.messages == {}


def test_a_dlq_replay_between_a_redrive_and_its_resume_wins_and_the_redrive_ends_quietly(platform):
    # Given a redrive asked for outside taskrail, whose ProcessTask has not resumed yet (the task still FAILED)
    arn = platform.failed_task()
    platform.redrive(arn, "console")

    # When a DLQ replay requeues the task first, then both executions reach their gates
    [outcome] = replay_queue(platform)
    platform.advance()

    # Then only the replay's execution ran the task; the redriven one found it QUEUED and ended without running it
    assert outcome.action == "started"
    assert platform.runs == [(arn_of("t-1-r1"), "claim")]
    assert platform.executions[arn]["status"] == "SUCCEEDED"


def test_a_redrive_that_resumes_between_a_replays_read_and_its_requeue_makes_the_replay_drop(platform):
    # Given a DLQ replay that has read the task FAILED, and a redrive resuming it just then
    arn = platform.failed_task()

    def redriven_meanwhile() -> None:
        platform.redrive(arn, "console")
        platform.advance()

    platform.on_requeue_read = redriven_meanwhile

    # When the replay goes on to requeue
    [outcome] = replay_queue(platform)
    platform.advance()

    # Then its conditional requeue lost, it started nothing, and the task ran once (the redrive)
    assert outcome.action == "dropped" and "redriven or replayed" in outcome.detail
    assert platform.runs == [(arn, "resume")]
    assert arn_of("t-1-r1") not in platform.executions


def test_taskrail_replay_does_not_redrive_a_task_a_dlq_replay_requeued(platform):
    # Given a DLQ replay that requeued the task (its new execution not started yet)
    arn = platform.failed_task()
    platform.requeue_failed("t-1")

    # When its owner runs `taskrail replay t-1`
    [outcome] = replay(platform, "t-1")
    platform.advance()

    # Then nothing is redriven (the task is not FAILED in that execution); the message's replay starts t-1-r1 once
    assert platform.redrive_calls == []
    assert outcome.action == "started"
    assert platform.runs == [(arn_of("t-1-r1"), "claim")]
    assert platform.executions[arn]["status"] == "FAILED"


def test_replaying_twice_redrives_once(platform):
    arn = platform.failed_task()

    first = replay(platform, "t-1")
    second = replay(platform, "t-1")  # before the redriven execution even resumed
    platform.advance()

    assert [o.action for o in first + second] == ["redriven", "nothing-to-replay"]
    assert platform.runs == [(arn, "resume")]


def test_a_message_of_an_older_execution_or_redrive_is_superseded(platform):
    # Given a task that failed again after a redrive (redrive 1), with messages that say their redrive count (today's
    # do not): the first failure's message is still there, and one of an older execution
    arn = platform.failed_task()
    platform.queue.messages.clear()
    platform.queue.send({"taskId": "t-1", "executionArn": arn, "attempt": 1, "input": ["t-1"], "redriveCount": 0})
    platform.items["t-1"]["redriveCount"] = 1
    platform.queue.send({"taskId": "t-1", "executionArn": arn_of("t-0"), "attempt": 1, "input": ["t-1"]})
    platform.queue.send({"taskId": "t-1", "executionArn": arn, "attempt": 1, "input": ["t-1"], "redriveCount": 1})

    outcomes = replay_queue(platform)
    platform.advance()

    # Then the two older messages are dropped, the latest failure's replayed once
    assert [o.action for o in outcomes] == ["dropped", "dropped", "started"]
    assert "redriven since" in outcomes[0].detail and "no longer holds the task" in outcomes[1].detail
    assert platform.queue.messages == {}
    assert platform.runs == [(arn_of("t-1-r1"), "claim")]


def test_taskrail_replay_reports_the_start_when_an_older_message_of_the_task_is_dropped_first(platform):
    # Given a caught failure of an earlier definition (not redrivable usefully) with an older message before its own
    arn = platform.failed_task()
    platform.histories[arn].append(entered(5, "TaskFailed", "FailStateEntered"))
    platform.queue.messages.clear()
    platform.queue.send({"taskId": "t-1", "executionArn": arn_of("t-0"), "attempt": 1, "input": ["t-1"]})
    platform.queue.send({"taskId": "t-1", "executionArn": arn, "attempt": 1, "input": ["t-1"]})

    [outcome] = replay(platform, "t-1")
    platform.advance()

    assert (outcome.action, outcome.execution_name) == ("started", "t-1-r1")
    assert platform.runs == [(arn_of("t-1-r1"), "claim")] and platform.queue.messages == {}


def test_a_task_that_failed_again_after_a_redrive_is_replayed_from_its_new_message(platform):
    # Given a task redriven once that failed again: the recorder set redriveCount 1, the outbox sent a message of
    # today's shape (no redriveCount), the first failure's message was retired by the redrive
    arn = platform.failed_task()
    platform.items["t-1"]["redriveCount"] = 1
    platform.executions[arn]["redriveCount"] = 1

    # When the DLQ is replayed
    outcomes = replay_queue(platform)
    platform.advance()

    # Then that message is the task's latest failure: replayed once as a new execution
    assert [o.action for o in outcomes] == ["started"]
    assert platform.runs == [(arn_of("t-1-r1"), "claim")]
