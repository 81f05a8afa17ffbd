"""The operator's view of one stack: replay, redrive, the dead-letter queue, results and execution histories.

The work is done by plain functions over ports (:mod:`taskrail.operator.replay`, :mod:`taskrail.operator.dlq`);
:class:`Operator` holds one stack's ports, and :meth:`Operator.over_aws` gives it the boto3 adapters. The owner
checks go through the user API (:class:`taskrail.client.TaskrailClient`); the rest uses the account's own AWS
credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

from task_common.contract import TERMINAL_STATUSES, result_key
from taskrail import history
from taskrail.client import Endpoints, TaskrailClient, elapsed_seconds, task_view
from taskrail.operator import dlq, replay
from taskrail.operator.aws import (
    AwsClients,
    DynamoTaskRecords,
    S3Results,
    SqsDeadLetters,
    StepFunctionsExecutions,
)
from taskrail.operator.ports import DeadLetters, Executions, OwnedTasks, Results, TaskRecords
from taskrail.operator.replay import ReplayOutcome

ACCESS_DENIED = frozenset({"AccessDeniedException", "AccessDenied"})


class Operator:
    def __init__(
        self,
        endpoints: Endpoints,
        *,
        owned: OwnedTasks,
        tasks: TaskRecords,
        executions: Executions,
        dead_letters: DeadLetters,
        results: Results,
        is_local: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoints = endpoints
        self.is_local = is_local
        self.owned = owned
        self.tasks = tasks
        self.executions = executions
        self.dead_letters = dead_letters
        self.results = results
        self._sleep = sleep

    @classmethod
    def over_aws(cls, client: TaskrailClient, aws: AwsClients) -> Operator:
        """The operator of ``client``'s stack: owner checks through ``client``, the rest through ``aws``."""
        endpoints = client.endpoints
        return cls(
            endpoints,
            owned=client,
            tasks=DynamoTaskRecords(aws, endpoints.tasks_table),
            executions=StepFunctionsExecutions(
                aws, endpoints.state_machine_arn, start_arn=endpoints.state_machine_alias_arn
            ),
            dead_letters=SqsDeadLetters(aws, endpoints.dead_letter_queue_url, wait_seconds=0 if client.is_local else 1),
            results=S3Results(aws),
            is_local=client.is_local,
        )

    # -- results and histories -------------------------------------------------------------------------

    def result(self, task_id: str) -> Any:
        return self.results.read_json(self.endpoints.results_bucket, result_key(task_id))

    def result_value(self, task_id: str) -> Any:
        """The task's result itself: inline in ``result.json``, or behind its claim-check reference."""
        stored = self.result(task_id)
        reference = stored.get("resultRef") or stored.get("result_ref")
        if not reference:
            return stored.get("result")
        bucket, _, key = reference.removeprefix("s3://").partition("/")
        return self.results.read_json(bucket, key)

    def execution_events(self, execution_arn: str) -> list[dict[str, Any]]:
        return self.executions.history(execution_arn)

    def history(self, task_id: str) -> list[dict[str, Any]]:
        arn = (self.tasks.get(task_id) or {}).get("executionArn")
        return self.execution_events(arn) if arn else []

    def progress(self, task_id: str) -> dict[str, Any]:
        """The task (API, owner only) with where its execution is: ``state``, ``retries``, ``elapsedSeconds``."""
        task = self.owned.get(task_id)
        state: str | None = None
        retries: int | None = 0
        if task.get("executionArn"):
            try:
                state, retries = history.execution_summary(self.execution_events(task["executionArn"]))
            except ClientError as error:
                # A user may read their tasks without being allowed to read executions: progress without them.
                if error.response["Error"]["Code"] not in ACCESS_DENIED:
                    raise
                retries = None
        return {**task_view(task), "state": state, "retries": retries, "elapsedSeconds": elapsed_seconds(task)}

    def watch(
        self,
        task_ids: list[str],
        *,
        timeout: float = 3600,
        interval: float = 0.5,
        on_update: Callable[[list[dict[str, Any]]], None] | None = None,
        wait: Callable[[float], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Like :meth:`TaskrailClient.wait`, with :meth:`progress` views; returns them in the order of
        ``task_ids``. ``wait(interval)`` between reads (default: sleep): a live channel's returns as soon as a change
        is pushed (taskrail/live.py)."""
        deadline = time.monotonic() + timeout
        views: dict[str, dict[str, Any]] = {}
        while True:
            for task_id in task_ids:
                if views.get(task_id, {}).get("status") not in TERMINAL_STATUSES:
                    views[task_id] = self.progress(task_id)
            ordered = [views[i] for i in task_ids]
            if on_update:
                on_update(ordered)
            if all(v["status"] in TERMINAL_STATUSES for v in ordered):
                return ordered
            if time.monotonic() > deadline:
                pending = [v["taskId"] for v in ordered if v["status"] not in TERMINAL_STATUSES]
                raise TimeoutError(f"{len(pending)} task(s) not terminal after {timeout} s: {pending[:5]}")
            (wait or self._sleep)(interval)

    # -- the dead-letter queue, replay and redrive --------------------------------------------------------

    def dlq_messages(self, max_messages: int = 10) -> list[dict[str, Any]]:
        """Peek at up to ``max_messages``: they are visible again when this returns."""
        return dlq.peek(self.dead_letters, max_messages)

    def dlq_summary(self, *, peek: int = 5, max_messages: int = 1000) -> dict[str, Any]:
        return dlq.summary(self.dead_letters, peek_count=peek, max_messages=max_messages)

    def replay_dlq(
        self,
        task_ids: set[str] | None = None,
        *,
        dry_run: bool = False,
        errors: set[str] | None = None,
        since_ms: int | None = None,
    ) -> list[ReplayOutcome]:
        return replay.replay_dlq(
            task_ids,
            queue=self.dead_letters,
            tasks=self.tasks,
            executions=self.executions,
            dry_run=dry_run,
            errors=errors,
            since_ms=since_ms,
        )

    def replay_tasks(self, task_ids: Iterable[str], *, dry_run: bool = False) -> list[ReplayOutcome]:
        return replay.replay_tasks(
            task_ids,
            owned=self.owned,
            queue=self.dead_letters,
            tasks=self.tasks,
            executions=self.executions,
            dry_run=dry_run,
        )

    def redrive(self, task: dict[str, Any], *, dry_run: bool = False) -> ReplayOutcome:
        return replay.redrive(task, executions=self.executions, dry_run=dry_run)
