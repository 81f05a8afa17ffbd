"""The task contract: the facts that the functions, the infrastructure, the workflow and the tools all rely on,
written once. Standard library only, so that ``infra/``, ``workflows/``, ``taskrail/`` and ``bench/`` import it
without pydantic, boto3 or CDK, and the Lambda bundle (the ``lambdas/`` folder) carries it unchanged.

The deployed stack hands the index names to its consumers from the template: the API's mapping templates get
them as placeholders rendered at synth time (``infra/constructs/api.py``), the reconciler function as an
environment variable (:data:`PENDING_INDEX_ENV`). The names here are what ``infra/constructs/storage.py``
declares; nothing else reads them directly.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from enum import StrEnum

# -- task statuses ------------------------------------------------------------------------------------------


class Status(StrEnum):
    """The ``status`` of a Tasks item. QUEUED is written by the API, RUNNING by the workflow's claim, the
    other four end the task."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    REJECTED = "REJECTED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


ALL_STATUSES: tuple[str, ...] = tuple(status.value for status in Status)
TERMINAL_STATUSES: frozenset[str] = frozenset(
    status.value for status in (Status.SUCCEEDED, Status.REJECTED, Status.FAILED, Status.CANCELLED)
)
# What a user may cancel (the API's cancel condition).
CANCELLABLE_STATUSES: frozenset[str] = frozenset({Status.QUEUED.value, Status.RUNNING.value})

# -- the Tasks table's indexes ------------------------------------------------------------------------------

# By owner, newest first: GET /tasks (the API's Query). It projects only the listed fields (no params): "-v2" since
# that replaced its ALL projection (a deployed stack cannot change a GSI's projection in place).
USER_INDEX = "userId-createdAt-v2"
# Sparse and write-sharded, oldest first: the reconciler's work, the tasks still QUEUED or RUNNING. An item is in
# it only while it has PENDING_SHARD: the API's submit, a replay's requeue and a redrive's resume set it, every
# write that ends the task removes it (MarkSucceeded, MarkRejected, the failure recorder's, the reconciler's, the
# API's cancel). Its value is one of PENDING_SHARDS, so the index's writes spread over that many partition keys
# (a key per status put every new task into the one QUEUED partition: docs/AWS-REVIEW.md, DynamoDB); the
# reconciler queries each shard. Replaces "status-createdAt" (a deployed stack cannot change a GSI in place).
PENDING_INDEX = "pendingShard-createdAt"
PENDING_SHARD_ATTRIBUTE = "pendingShard"
PENDING_SHARDS: tuple[str, ...] = tuple("0123456789abcdef")
# The environment variable that hands the reconciler function the pending index's name from the template.
PENDING_INDEX_ENV = "TASKS_PENDING_INDEX_NAME"
# Sparse, by pending outcome (outcomePending: set by every terminal write, removed by the outbox's mark), oldest
# first: the reconciler re-triggers an outcome still pending after the task-changes pipe gave up on its record.
OUTCOME_PENDING_INDEX = "outcomePending-createdAt"
OUTCOME_PENDING_INDEX_ENV = "TASKS_OUTCOME_PENDING_INDEX_NAME"


def pending_shard(task_id: str) -> str:
    """The shard a Python writer (a requeue, a resume) files a task under: a hex digit of the id's SHA-256. The
    API's template has no hash function and takes the last hex digit of ``$context.requestId`` (a random UUID)
    instead; any shard is right, since the reconciler reads them all."""
    return PENDING_SHARDS[hashlib.sha256(task_id.encode()).digest()[0] % len(PENDING_SHARDS)]


# -- live progress (the WebSocket API, infra/constructs/live.py) -----------------------------------------------

# The Connections table's index by owner (partition ownerId, sort connectionId): the push function's Query for the
# connections of a task's owner; it has the name from the template, in this environment variable.
CONNECTIONS_OWNER_INDEX = "owner"
CONNECTIONS_OWNER_INDEX_ENV = "CONNECTIONS_OWNER_INDEX_NAME"
# A client's frame {"action": "subscribe", "taskId": "<id>"} (one task) or {"action": "subscribe"} (all the caller's
# tasks, stored as ALL_TASKS); the route key is the action (RouteSelectionExpression $request.body.action).
SUBSCRIBE_ACTION = "subscribe"
ALL_TASKS = "*"
# How long API Gateway keeps a WebSocket connection open ("Quotas for configuring and running a WebSocket in API
# Gateway": 2 hours, not adjustable): a connection row expires (TTL) then, and a client reconnects and resubscribes.
CONNECTION_MAX_SECONDS = 2 * 60 * 60
# The server's messages: the answer to a subscribe, and one per change of a task's progress or status.
SUBSCRIBED_MESSAGE = "subscribed"
PROGRESS_MESSAGE = "progress"

# -- timestamps in the API's answers ------------------------------------------------------------------------

# Every timestamp the API answers with is RFC 3339 UTC with exactly three fraction digits and "Z"
# ("2026-12-01T15:34:22.123Z"), whatever form it is stored in: createdAt and cancelledAt as epoch milliseconds
# (the indexes sort on the number), the workflow's and the functions' times as ISO text. The response templates
# normalise (api_templates/task_fields.vtl); docs/DECISIONS.md "Timestamps".
TIMESTAMP_FIELDS: tuple[str, ...] = ("createdAt", "startedAt", "updatedAt", "finishedAt", "cancelledAt")
TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"


def api_timestamp(epoch_ms: int) -> str:
    """``epoch_ms`` as the API writes a timestamp."""
    seconds, millis = divmod(int(epoch_ms), 1000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{millis:03d}Z"


def api_time(moment: datetime) -> str:
    """An aware ``moment`` as the API writes a timestamp (the CLI's --json and the console use it too)."""
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


# -- the results bucket's keys ------------------------------------------------------------------------------

TASKS_PREFIX = "tasks/"  # everything the platform writes for a task
USERS_PREFIX = "users/"  # users' own objects, which a task may read as its input
DIAGNOSTICS_PREFIX = "diagnostics/"  # markers of the diagnostic task types
# The workflow's StoreResult key, as a format with one ``{}`` (Step Functions' States.Format takes the same).
RESULT_KEY_FORMAT = TASKS_PREFIX + "{}/result.json"


def task_prefix(task_id: str) -> str:
    return f"{TASKS_PREFIX}{task_id}/"


def user_prefix(user_id: str) -> str:
    return f"{USERS_PREFIX}{user_id}/"


def result_key(task_id: str) -> str:
    """The task's result object (the workflow's StoreResult): the result inline, or its claim-check reference."""
    return RESULT_KEY_FORMAT.format(task_id)


def input_key(task_id: str) -> str:
    """Parameters past the claim-check threshold (Validate writes them)."""
    return f"{task_prefix(task_id)}input.json"


def result_body_key(task_id: str) -> str:
    """A result past the claim-check threshold (Process writes it; ``result.json`` then holds its reference)."""
    return f"{task_prefix(task_id)}result-body.json"


# -- execution names ----------------------------------------------------------------------------------------

MAX_EXECUTION_NAME = 80  # StartExecution's limit
REPLAY_SUFFIX = "r"  # `taskrail replay` starts {taskId}-r{attempt}
RECONCILER_SUFFIX = "q"  # the reconciler starts a stuck QUEUED task as {taskId}-q{attempt}
HASHED_ID_CHARS = 60


def execution_name(task_id: str, attempt: int, suffix: str) -> str:
    """``{taskId}-{suffix}{attempt}``: deterministic, so that two starts of the same attempt are one execution.
    Ids too long for the 80-character limit (idempotency-key ids) become ``t`` and 60 hex digits of their
    SHA-256."""
    name = f"{task_id}-{suffix}{attempt}"
    if len(name) <= MAX_EXECUTION_NAME:
        return name
    return f"t{hashlib.sha256(task_id.encode()).hexdigest()[:HASHED_ID_CHARS]}-{suffix}{attempt}"


def replay_execution_name(task_id: str, attempt: int) -> str:
    return execution_name(task_id, attempt, REPLAY_SUFFIX)


def reconciler_execution_name(task_id: str, attempt: int) -> str:
    return execution_name(task_id, attempt, RECONCILER_SUFFIX)


def execution_arn_of(state_machine_arn: str, name: str) -> str:
    """The ARN Step Functions gives the execution ``name`` of a STANDARD state machine. Started through an alias or
    a version (``stateMachine:M:live``), the execution's ARN is still ``execution:M:name`` (AWS's recorded
    StartExecution responses, LocalStack's test_sfn_api_aliasing snapshot)."""
    unqualified = ":".join(state_machine_arn.split(":")[:7])
    return f"{unqualified.replace(':stateMachine:', ':execution:', 1)}:{name}"


# -- outcome events -----------------------------------------------------------------------------------------

EVENT_SOURCE = "taskrail"
# The detail type the workflow publishes for each outcome on the task event bus (one event per ended task).
OUTCOME_DETAIL_TYPE: dict[str, str] = {
    Status.SUCCEEDED.value: "TaskSucceeded",
    Status.REJECTED.value: "TaskRejected",
    Status.FAILED.value: "TaskFailed",
}
OUTCOME_DETAIL_TYPES: tuple[str, ...] = tuple(OUTCOME_DETAIL_TYPE.values())
# The statuses that have an outcome to deliver: what a terminal write sets outcomePending to (the outbox), which the
# task-changes pipe and the push pipe match (infra/constructs/pipe.py, live.py). A cancel has none.
OUTCOME_STATUSES: tuple[str, ...] = tuple(OUTCOME_DETAIL_TYPE)

# -- metrics --------------------------------------------------------------------------------------------------

# The handlers count the errors they raise on purpose (task_common/observability.py); the function alarms
# subtract it from Lambda's Errors (infra/constructs/observability.py).
EXPECTED_ERRORS_METRIC = "ExpectedErrors"

# -- the lifecycle workflow's end states --------------------------------------------------------------------


class EndState(StrEnum):
    """The task-lifecycle workflow's Succeed states (workflows/task_lifecycle.py): it has no Fail state."""

    SUCCEEDED = "TaskSucceeded"
    REJECTED = "TaskRejected"
    ALREADY_CLAIMED = "TaskAlreadyClaimed"
    CANCELLED = "TaskWasCancelled"


# The end states of the Catch path: only a rejection is caught into an end state (its execution SUCCEEDED, so it is
# not redrivable). Every other failure ends the execution FAILED, TIMED_OUT or ABORTED at the state that failed, and
# the failure recorder sets its task FAILED (workflows/failure_recorder.py); there is no Fail state.
CATCH_PATH_END_STATES: frozenset[str] = frozenset({EndState.REJECTED.value})

# -- the stack's outputs ------------------------------------------------------------------------------------


class Output(StrEnum):
    """The stack's Outputs (infra/stack.py declares them): how every client finds the stack's resources, on AWS
    from DescribeStacks and locally from the synthesized template's Outputs, resolved against what the local
    stack provisioned."""

    API_URL = "ApiUrl"
    TASKS_TABLE_NAME = "TasksTableName"
    RESULTS_BUCKET_NAME = "ResultsBucketName"
    STATE_MACHINE_ARN = "StateMachineArn"
    # What every starter names (canary deploys, docs/DEPLOY.md): a start through it runs the version it routes to.
    STATE_MACHINE_ALIAS_ARN = "StateMachineAliasArn"
    RECONCILER_STATE_MACHINE_ARN = "ReconcilerStateMachineArn"
    DEAD_LETTER_QUEUE_URL = "DeadLetterQueueUrl"
    PIPE_DEAD_LETTER_QUEUE_URL = "PipeDeadLetterQueueUrl"
    NOTIFICATIONS_TOPIC_ARN = "NotificationsTopicArn"
    NOTIFICATIONS_ARCHIVE_QUEUE_URL = "NotificationsArchiveQueueUrl"
    EVENT_BUS_NAME = "EventBusName"
    # The live-progress WebSocket API's stage URL (wss://{apiId}.execute-api.{region}.{urlSuffix}/{stage}).
    WEBSOCKET_URL = "WebSocketUrl"


# What the CLI needs of a deployed stack to reach it.
CLIENT_OUTPUTS: tuple[str, ...] = (
    Output.API_URL.value,
    Output.TASKS_TABLE_NAME.value,
    Output.RESULTS_BUCKET_NAME.value,
    Output.STATE_MACHINE_ARN.value,
    Output.DEAD_LETTER_QUEUE_URL.value,
)

# -- Step Functions execution statuses ----------------------------------------------------------------------

# An execution that ended without succeeding: the failure recorder (or the reconciler) fails its task, an operator
# may redrive it.
UNSUCCESSFUL_EXECUTION_STATUSES: frozenset[str] = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
# What the failure recorder and the reconciler record when an execution ended without an error of its own (a
# timeout, an abort); the cause is a format with one ``{}`` for the execution's status (States.Format's syntax too).
EXECUTION_ENDED_ERROR = "ExecutionEnded"
# Step Functions' own events on the default bus, one per execution status change of a STANDARD workflow ("Automating
# Step Functions event delivery with EventBridge"): the failure recorder's rule matches them.
EXECUTION_STATUS_EVENT_SOURCE = "aws.states"
EXECUTION_STATUS_DETAIL_TYPE = "Step Functions Execution Status Change"
EXECUTION_ENDED_CAUSE = "the execution ended {} while the task ran"
