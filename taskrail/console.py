"""The local web console: the workflow graph, each execution's path coloured by outcome, its event history and
per-state input/output, with replay, redrive and cancel (ARCHITECTURE §5).

One page (``console_static/``: plain HTML, JavaScript and inline SVG, nothing fetched from outside) over a small
JSON API served by the standard library on 127.0.0.1. The graph layout and the per-state outcomes are computed
here, in plain functions the tests call directly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from botocore.exceptions import ClientError

from task_common.contract import TERMINAL_STATUSES, Status, api_time, execution_arn_of
from task_common.errors import TaskCancelled
from taskrail import execution_logs, history
from taskrail.client import ApiError, TaskrailClient
from taskrail.history import parse_json
from taskrail.operator import Operator
from taskrail.scaffold import type_catalog

log = logging.getLogger("taskrail.console")
ROOT = Path(__file__).resolve().parents[1]
ASL_PATH = ROOT / "asl" / "task_lifecycle.asl.json"
STATIC_DIR = Path(__file__).resolve().parent / "console_static"
STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
BIND_HOSTS = frozenset({"127.0.0.1", "localhost"})
# A header no cross-site form or simple request can carry: a page elsewhere cannot make the browser replay or
# cancel through the console (it would need a CORS preflight, which the console never grants).
ACTION_HEADER = "X-Taskrail-Console"
# What a row of the list shows: the task's own end (the six task statuses, so a rejected task's quietly SUCCEEDED
# execution reads REJECTED, a cancelled one's CANCELLED), or the execution's status when the execution does not
# hold an ended task. Each shown status comes from these execution statuses (the list filters with them).
SHOWN_FROM: dict[str, tuple[str, ...]] = {
    "RUNNING": ("RUNNING",),
    "SUCCEEDED": ("SUCCEEDED",),
    "FAILED": ("FAILED", "TIMED_OUT", "ABORTED"),
    "REJECTED": ("SUCCEEDED",),
    "CANCELLED": ("ABORTED", "SUCCEEDED"),
    "TIMED_OUT": ("TIMED_OUT",),
    "ABORTED": ("ABORTED",),
    "PENDING_REDRIVE": ("PENDING_REDRIVE",),
}
TASK_ID_PATTERN = re.compile(r"[A-Za-z0-9._:+=/-]{1,256}")
CANCEL_ERROR = TaskCancelled.__name__
MAX_LIMIT = 500
# How long a cancel waits for the cancel pipe to stop the task's execution (it takes well under a second locally).
STOP_DEADLINE_SECONDS = 30.0
STOP_POLL_SECONDS = 0.1
MAX_BODY_BYTES = 1024 * 1024


class StackView(Protocol):
    """What the console reads of the stack it shows (the local stack's StackInfo has these)."""

    api_url: str
    tasks_table: str
    state_machine_arn: str


class Refusal(Protocol):
    @property
    def message(self) -> str: ...


# The host check every local listener shares (taskrail/local/guard.py): a refusal, or None to serve the request.
HostGuard = Callable[[BaseHTTPRequestHandler], Refusal | None]


class LiveChanges(Protocol):
    """What the console reads of the live channel (taskrail/live.py LiveFeed)."""

    url: str

    def changes_after(self, after: int, timeout: float) -> tuple[int, list[dict[str, Any]]]: ...


#: A page's long poll of /api/live waits at most this long for a pushed change.
LIVE_WAIT_SECONDS = 20.0


@dataclass(frozen=True)
class ConsoleDependencies:
    """What the console needs from the stack it shows, handed in by whoever starts it (taskrail/local/stack.py):
    the console knows nothing of how the stack is made."""

    info: Callable[[], StackView | None]  # None while the stack is starting
    aws: Callable[[str], Any]  # a boto3 client of the stack's AWS endpoint
    operator: Callable[[], Operator]  # replay from the DLQ, as `taskrail replay --dlq` does it
    owner_client: Callable[[str], TaskrailClient | None]  # the API signed as a task's owner (None: not a local one)
    sleep: Callable[[float], None] = time.sleep
    # The API signed as the user the "submit a task" form submits as (None: the form is not offered).
    submitter: Callable[[], TaskrailClient | None] = lambda: None
    # The stack's live-progress channel as a feed of pushed changes (taskrail/live.py LiveFeed; None: the stack has
    # none, and the page polls). docs/DECISIONS.md "Live progress in the console: relayed by the console's server".
    live: Callable[[], LiveChanges | None] = lambda: None
    # The local mailbox (SNS email deliveries: confirmations with their token, task outcomes), oldest first.
    mail: Callable[[], list[dict[str, Any]]] = lambda: []


# -- the workflow graph ------------------------------------------------------------------------------------

NODE_WIDTH, NODE_HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 196, 38, 52, 24, 16
LANE_SPACING = 8


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    kind: str  # next | catch | default | choice
    label: str = ""


def transitions(name: str, state: dict[str, Any]) -> list[Transition]:
    found = [Transition(name, state["Next"], "next")] if "Next" in state else []
    found += [Transition(name, c["Next"], "choice", _choice_label(c)) for c in state.get("Choices", [])]
    if "Default" in state:
        found.append(Transition(name, state["Default"], "default"))
    found += [Transition(name, c["Next"], "catch", ", ".join(c["ErrorEquals"])) for c in state.get("Catch", [])]
    return found


def _choice_label(choice: dict[str, Any]) -> str:
    return str(choice.get("Variable", choice.get("Condition", "")))


def _main_successor(state: dict[str, Any]) -> str | None:
    if "Next" in state:
        return str(state["Next"])
    if "Default" in state:
        return str(state["Default"])
    choices = state.get("Choices", [])
    return str(choices[0]["Next"]) if choices else None


def _chain(head: str, states: dict[str, Any], placed: dict[str, tuple[int, int]]) -> list[str]:
    """The states reached from ``head`` by following Next (a Choice's Default) until a placed state."""
    chain: list[str] = []
    current: str | None = head
    while current is not None and current in states and current not in placed and current not in chain:
        chain.append(current)
        current = _main_successor(states[current])
    return chain


def _ends_in_failure(chain: list[str], states: dict[str, Any]) -> bool:
    return states[chain[-1]]["Type"] == "Fail"


class _Grid:
    """Columns of rows: column 0 is the main path; failure branches go right, quiet endings go left."""

    def __init__(self) -> None:
        self.cells: dict[str, tuple[int, int]] = {}

    def free(self, column: int, first: int, last: int) -> bool:
        # One empty row between two branches stacked in the same column keeps their edges apart.
        return not any(c == column and first - 1 <= r <= last + 1 for c, r in self.cells.values())

    def place_chain(self, chain: list[str], side: int, first_row: int) -> None:
        column = side
        while not self.free(column, first_row, first_row + len(chain) - 1):
            column += side
        for offset, name in enumerate(chain):
            self.cells[name] = (column, first_row + offset)


def layout_workflow(definition: dict[str, Any]) -> dict[str, Any]:
    """Positions for every top-level state and orthogonal routes for every transition.

    The main path (StartAt following Next) runs top-down in one column. Every other chain starts one row below
    the lowest state that can reach it, in the first side column where it fits: chains that end in a Fail state
    to the right, the others to the left. Edges leave a node sideways into the gap between columns, run along
    the gap above the target's row and enter the target from the top, so they never cross a node.
    """
    states: dict[str, Any] = definition["States"]
    grid = _Grid()
    for row, name in enumerate(_chain(definition["StartAt"], states, grid.cells)):
        grid.cells[name] = (0, row)
    edges = _unique_transitions(states)
    while unplaced := [n for n in states if n not in grid.cells]:
        heads = _branch_heads(edges, grid.cells) or unplaced[:1]
        # The branch most states lead to goes closest to the main path.
        heads.sort(key=lambda h: -sum(1 for e in edges if e.target == h and e.source in grid.cells))
        for head in heads:
            if head in grid.cells:
                continue
            chain = _chain(head, states, grid.cells)
            rows = [grid.cells[e.source][1] for e in edges if e.target == head and e.source in grid.cells]
            grid.place_chain(chain, 1 if _ends_in_failure(chain, states) else -1, max(rows, default=-1) + 1)
    return _positioned(states, grid.cells, edges)


def _unique_transitions(states: dict[str, Any]) -> list[Transition]:
    seen: dict[tuple[str, str], Transition] = {}
    for name, state in states.items():
        for transition in transitions(name, state):
            key = (transition.source, transition.target)
            if key in seen:
                merged = ", ".join(filter(None, (seen[key].label, transition.label)))
                seen[key] = Transition(key[0], key[1], seen[key].kind, merged)
            elif transition.target in states:
                seen[key] = transition
    return list(seen.values())


def _branch_heads(edges: list[Transition], placed: dict[str, tuple[int, int]]) -> list[str]:
    heads: list[str] = []
    for edge in edges:
        if edge.source in placed and edge.target not in placed and edge.target not in heads:
            heads.append(edge.target)
    return heads


def _positioned(states: dict[str, Any], cells: dict[str, tuple[int, int]], edges: list[Transition]) -> dict[str, Any]:
    min_column = min(c for c, _ in cells.values())
    columns = max(c for c, _ in cells.values()) - min_column + 1
    rows = max(r for _, r in cells.values()) + 1
    boxes = {
        name: (
            MARGIN + (column - min_column) * (NODE_WIDTH + COLUMN_GAP),
            MARGIN + row * (NODE_HEIGHT + ROW_GAP),
        )
        for name, (column, row) in cells.items()
    }
    nodes = [
        {
            "name": name,
            "type": state["Type"],
            "comment": state.get("Comment", ""),
            "column": cells[name][0],
            "row": cells[name][1],
            "x": boxes[name][0],
            "y": boxes[name][1],
            "width": NODE_WIDTH,
            "height": NODE_HEIGHT,
            "main": cells[name][0] == 0,
        }
        for name, state in states.items()
    ]
    lanes = _lane_offsets(edges, cells)
    routed = [
        {**asdict(edge), "points": _route(edge, cells, boxes, lanes.get((edge.source, edge.target), 0))}
        for edge in edges
    ]
    return {
        "nodes": nodes,
        "edges": routed,
        "width": 2 * MARGIN + columns * NODE_WIDTH + (columns - 1) * COLUMN_GAP,
        "height": 2 * MARGIN + rows * NODE_HEIGHT + (rows - 1) * ROW_GAP,
    }


def _is_straight(edge: Transition, cells: dict[str, tuple[int, int]]) -> bool:
    (source_column, source_row), (target_column, target_row) = cells[edge.source], cells[edge.target]
    return source_column == target_column and target_row == source_row + 1


def _exit_side(edge: Transition, cells: dict[str, tuple[int, int]]) -> int:
    source_column, target_column = cells[edge.source][0], cells[edge.target][0]
    if target_column == source_column:
        return -1 if source_column < 0 else 1
    return 1 if target_column > source_column else -1


def _lane_offsets(edges: list[Transition], cells: dict[str, tuple[int, int]]) -> dict[tuple[str, str], float]:
    """Edges towards different targets through the same gap get their own lane, so each route can be followed."""
    by_gap: dict[tuple[int, int], list[str]] = {}
    for edge in edges:
        if not _is_straight(edge, cells):
            gap = (cells[edge.source][0], _exit_side(edge, cells))
            targets = by_gap.setdefault(gap, [])
            if edge.target not in targets:
                targets.append(edge.target)
    offsets: dict[tuple[str, str], float] = {}
    for edge in edges:
        if not _is_straight(edge, cells):
            targets = by_gap[(cells[edge.source][0], _exit_side(edge, cells))]
            offsets[(edge.source, edge.target)] = (targets.index(edge.target) - (len(targets) - 1) / 2) * LANE_SPACING
    return offsets


def _route(
    edge: Transition, cells: dict[str, tuple[int, int]], boxes: dict[str, tuple[int, int]], lane: float
) -> list[list[float]]:
    (sx, sy), (tx, ty) = boxes[edge.source], boxes[edge.target]
    target_center = tx + NODE_WIDTH / 2
    if _is_straight(edge, cells):
        return [[sx + NODE_WIDTH / 2, sy + NODE_HEIGHT], [target_center, ty]]
    side = _exit_side(edge, cells)
    exit_x = sx + NODE_WIDTH if side > 0 else sx
    lane_x = exit_x + side * COLUMN_GAP / 2 + lane
    middle_y = sy + NODE_HEIGHT / 2
    above_target = ty - ROW_GAP / 2
    # Targets in the same row are reached along the gap below them, entering at the bottom instead.
    if cells[edge.target][1] == cells[edge.source][1] and cells[edge.target][0] != cells[edge.source][0]:
        return [[exit_x, middle_y], [tx if side > 0 else tx + NODE_WIDTH, ty + NODE_HEIGHT / 2]]
    return [[exit_x, middle_y], [lane_x, middle_y], [lane_x, above_target], [target_center, above_target],
            [target_center, ty]]  # fmt: skip


# -- per-state outcomes of one execution -------------------------------------------------------------------


def classify_states(
    definition: dict[str, Any], events: list[dict[str, Any]], execution_status: str
) -> dict[str, dict[str, Any]]:
    """For each top-level state: its outcome and, if it ran, its last visit (input, output, attempts, errors).

    succeeded: exited after its work succeeded the first time; retried: a task attempt failed and a later one
    succeeded; caught: the last attempt failed and a Catch moved on; failed: a Fail state, or the execution ended
    inside it; running: entered and the execution still runs; not_reached: never entered (taskrail/history.py).
    """
    visits = history.state_visits(events)
    result: dict[str, dict[str, Any]] = {}
    for name in definition["States"]:
        mine = [v for v in visits if v.name == name]
        if not mine:
            result[name] = {"outcome": history.Outcome.NOT_REACHED.value, "visits": 0}
            continue
        last = mine[-1]
        result[name] = {
            "outcome": last.outcome(execution_status).value,
            "visits": len(mine),
            "retries": last.retries,
            **last.as_dict(),
        }
    return result


def taken_transitions(events: Iterable[dict[str, Any]]) -> list[list[str]]:
    return [list(pair) for pair in history.read(events).transitions()]


# -- what the API does ---------------------------------------------------------------------------------------


class ConsoleError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return api_time(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _task_id_of(execution_input: Any) -> str | None:
    parsed = parse_json(execution_input)
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], str):
        return parsed[0]
    return None


EXPRESS_NOT_LISTED = (
    "an EXPRESS lifecycle's executions are neither listed nor described by Step Functions; their events are in the "
    "lifecycle's CloudWatch Logs group (`taskrail history TASK` reads them)"
)


@contextmanager
def _aws_errors() -> Iterator[None]:
    """AWS errors a caller can fix become 4xx answers; anything else stays a 500."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", str(error))
        if code in ("ExecutionDoesNotExist", "StateMachineDoesNotExist", "ResourceNotFoundException"):
            raise ConsoleError(HTTPStatus.NOT_FOUND, message) from error
        if code in ("InvalidArn", "ValidationException", "InvalidParameterValue"):
            raise ConsoleError(HTTPStatus.BAD_REQUEST, message) from error
        if code == "StateMachineTypeNotSupported":  # ListExecutions of an EXPRESS machine
            raise ConsoleError(HTTPStatus.CONFLICT, f"{message}: {EXPRESS_NOT_LISTED}") from error
        raise


class ConsoleService:
    """The console's operations over the stack's AWS endpoint (clients made once, on first use: the console starts
    before the stack has finished publishing its endpoints)."""

    def __init__(self, dependencies: ConsoleDependencies, asl_path: Path = ASL_PATH) -> None:
        self._deps = dependencies
        self._asl_path = asl_path
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._task_ids: dict[str, str | None] = {}  # an execution's input never changes
        self._definition: dict[str, Any] | None = None

    @property
    def info(self) -> StackView:
        info = self._deps.info()
        if info is None:
            raise ConsoleError(HTTPStatus.SERVICE_UNAVAILABLE, "the local stack is still starting")
        return info

    def aws(self, service: str) -> Any:
        self.info  # noqa: B018 -- refuses before the stack has published its endpoint
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._deps.aws(service)
            return self._clients[service]

    def definition(self) -> dict[str, Any]:
        if self._definition is None:
            self._definition = json.loads(self._asl_path.read_text())
        return self._definition

    # -- reading -----------------------------------------------------------------------------------------

    def workflow(self) -> dict[str, Any]:
        definition = self.definition()
        arn = self.info.state_machine_arn
        return {
            "stateMachineArn": arn,
            "stateMachineName": arn.rsplit(":", 1)[-1],
            "apiUrl": self.info.api_url,
            "definition": definition,
            "layout": layout_workflow(definition),
        }

    def executions(self, status: str | None = None, limit: str | int | None = None) -> dict[str, Any]:
        """The newest executions, each with its task and the status it is shown with (:data:`SHOWN_FROM`);
        ``status`` filters on the shown status."""
        if status and status not in SHOWN_FROM:
            raise ConsoleError(HTTPStatus.BAD_REQUEST, f"status must be one of {', '.join(SHOWN_FROM)}")
        most = _limit(limit)
        listed: dict[str, dict[str, Any]] = {}
        for execution_status in SHOWN_FROM[status] if status else (None,):
            request: dict[str, Any] = {"stateMachineArn": self.info.state_machine_arn, "maxResults": most}
            if execution_status:
                request["statusFilter"] = execution_status
            with _aws_errors():
                for execution in self.aws("stepfunctions").list_executions(**request)["executions"]:
                    listed[execution["executionArn"]] = execution
        ordered = sorted(listed.values(), key=lambda e: e["startDate"], reverse=True)
        task_ids = {e["executionArn"]: self._task_id(e["executionArn"]) for e in ordered}
        tasks = self._tasks({t for t in task_ids.values() if t})
        rows = []
        for execution in ordered:
            task_id = task_ids[execution["executionArn"]]
            task = tasks.get(task_id or "", {})
            shown = shown_status(execution["executionArn"], execution["status"], task)
            if status and shown != status:
                continue
            rows.append(
                {
                    **_jsonable({k: execution.get(k) for k in ("executionArn", "name", "status", "startDate")}),
                    "stopDate": _jsonable(execution.get("stopDate")),
                    "taskId": task_id,
                    "taskType": task.get("type"),
                    "taskStatus": task.get("status"),
                    "shownStatus": shown,
                }
            )
        return {"executions": rows[:most]}

    def execution(self, arn: str) -> dict[str, Any]:
        sfn = self.aws("stepfunctions")
        if execution_logs.is_express_arn(arn):
            return self._express_execution(arn)
        with _aws_errors():
            described = sfn.describe_execution(executionArn=arn)
            events = list(self._history(arn))
        task_id = _task_id_of(described.get("input"))
        execution = {
            **_jsonable(described),
            "input": parse_json(described.get("input")),
            "output": parse_json(described.get("output")),
            "taskId": task_id,
        }
        return {
            "execution": execution,
            "task": self._tasks({task_id}).get(task_id) if task_id else None,
            "states": classify_states(self.definition(), events, described["status"]),
            "transitions": taken_transitions(events),
            "events": _jsonable(events),
        }

    def _express_execution(self, arn: str) -> dict[str, Any]:
        """An Express execution as its logged events show it (Step Functions neither describes it nor keeps its
        history: services/stepfunctions_express.py); no input or output (the lifecycle logs no execution data)."""
        with _aws_errors():
            machine = self.aws("stepfunctions").describe_state_machine(stateMachineArn=self.info.state_machine_arn)
        group = execution_logs.log_group_name(machine)
        events = execution_logs.history(self.aws("logs"), group, arn) if group else []
        described = execution_logs.executions_of({arn: events})
        if not described:
            raise ConsoleError(HTTPStatus.NOT_FOUND, f"no event of {arn} in the lifecycle's log group {group}")
        execution = {**_jsonable(described[0]), "input": None, "output": None, "taskId": None}
        return {
            "execution": execution,
            "task": None,
            "states": classify_states(self.definition(), events, described[0]["status"]),
            "transitions": taken_transitions(events),
            "events": _jsonable(events),
        }

    def _history(self, arn: str) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = self.aws("stepfunctions").get_execution_history(**request)
            yield from page["events"]
            if not page.get("nextToken"):
                return
            request["nextToken"] = page["nextToken"]

    def _task_id(self, arn: str) -> str | None:
        if arn not in self._task_ids:
            with _aws_errors():
                described = self.aws("stepfunctions").describe_execution(executionArn=arn)
            self._task_ids[arn] = _task_id_of(described.get("input"))
        return self._task_ids[arn]

    def _tasks(self, task_ids: set[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        ordered = sorted(task_ids)
        for start in range(0, len(ordered), 100):
            keys = [{"taskId": {"S": t}} for t in ordered[start : start + 100]]
            request = {
                self.info.tasks_table: {
                    "Keys": keys,
                    "ProjectionExpression": "taskId, #type, #status, attempt, progress, #error, executionArn",
                    "ExpressionAttributeNames": {"#type": "type", "#status": "status", "#error": "error"},
                }
            }
            response = self.aws("dynamodb").batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self.info.tasks_table, []):
                found[item["taskId"]["S"]] = {k: _attribute(v) for k, v in item.items()}
        return found

    # -- operator actions ------------------------------------------------------------------------------

    def replay(self, task_id: str) -> dict[str, Any]:
        """The task's dead-letter message is replayed as a new execution, as ``taskrail replay --dlq`` does (the
        Redrive button resumes the failed execution instead: :meth:`redrive`)."""
        if not TASK_ID_PATTERN.fullmatch(task_id):
            raise ConsoleError(HTTPStatus.BAD_REQUEST, "not a task id")
        # Checked first: a replay receives (and briefly hides) the DLQ's other messages while it looks for this one.
        task = self._tasks({task_id}).get(task_id)
        if task is None:
            raise ConsoleError(HTTPStatus.NOT_FOUND, f"no task {task_id}")
        if task.get("status") != "FAILED":
            raise ConsoleError(HTTPStatus.CONFLICT, f"the task is {task.get('status')}: only a FAILED task is replayed")
        outcomes = self._deps.operator().replay_dlq({task_id})
        if not outcomes:
            raise ConsoleError(HTTPStatus.NOT_FOUND, f"no message for task {task_id} in the dead-letter queue")
        machine = self.info.state_machine_arn
        return {
            "taskId": task_id,
            "outcomes": [
                {**asdict(o), "executionArn": execution_arn_of(machine, o.execution_name) if o.execution_name else None}
                for o in outcomes
            ],
        }

    def redrive(self, arn: str) -> dict[str, Any]:
        """RedriveExecution, as the Step Functions console's Redrive button calls it: nothing checked here that
        Step Functions does not check itself (a SUCCEEDED or RUNNING execution is ExecutionNotRedrivable: 409).
        The workflow decides what the redrive may do with its task (it resumes only a FAILED task it holds)."""
        sfn = self.aws("stepfunctions")
        try:
            with _aws_errors():
                sfn.redrive_execution(executionArn=arn)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExecutionNotRedrivable":
                raise
            raise ConsoleError(HTTPStatus.CONFLICT, error.response["Error"].get("Message", "")) from error
        with _aws_errors():
            described = sfn.describe_execution(executionArn=arn)
        return {
            "executionArn": arn,
            "status": described["status"],
            "redriveCount": described.get("redriveCount", 0),
            "redriveDate": _jsonable(described.get("redriveDate")),
        }

    def stop(self, arn: str) -> dict[str, Any]:
        """Stops a running execution. When it is the one running its task (or a replay's that the task has not
        claimed yet), the task is cancelled first exactly as its owner cancels it: ``DELETE /tasks/{id}`` through
        the API, whose condition decides, and the cancel pipe then stops the execution (storage first). Any other
        execution is stopped directly, and its task left as it is."""
        with _aws_errors():
            described = self.aws("stepfunctions").describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            raise ConsoleError(HTTPStatus.CONFLICT, f"the execution is {described['status']}, not RUNNING")
        task_id = _task_id_of(described.get("input"))
        task = self._stored_task(task_id) if task_id else None
        task_status = task.get("status") if task else None
        cancelled = False
        if task_id and task and _runs_in(task, arn):
            task_status = self._cancel_as_owner(task_id, task)
            cancelled = task_status == Status.CANCELLED
        if cancelled and task is not None and task.get("executionArn") == arn:
            self._await_stop(arn)  # the cancel pipe stops it
        else:
            with _aws_errors():
                self.aws("stepfunctions").stop_execution(
                    executionArn=arn, error=CANCEL_ERROR, cause="stopped from the local console"
                )
        return {"executionArn": arn, "stopped": True, "taskId": task_id, "taskStatus": task_status}

    def _stored_task(self, task_id: str) -> dict[str, Any] | None:
        item = (
            self.aws("dynamodb")
            .get_item(
                TableName=self.info.tasks_table,
                Key={"taskId": {"S": task_id}},
                ConsistentRead=True,
                ProjectionExpression="#status, executionArn, userId",
                ExpressionAttributeNames={"#status": "status"},
            )
            .get("Item")
        )
        return {k: _attribute(v) for k, v in item.items()} if item else None

    def _cancel_as_owner(self, task_id: str, task: dict[str, Any]) -> str | None:
        client = self._deps.owner_client(str(task.get("userId", "")))
        if client is None:
            raise ConsoleError(HTTPStatus.CONFLICT, f"task {task_id} is not owned by a local user or role")
        try:
            return str(client.cancel(task_id)["status"])
        except ApiError as error:
            if error.status != HTTPStatus.CONFLICT:
                raise
            # The API's condition refused: the task ended meanwhile. Say what it is now.
            return (self._stored_task(task_id) or {}).get("status")

    def _await_stop(self, arn: str) -> None:
        deadline = time.monotonic() + STOP_DEADLINE_SECONDS
        while self.aws("stepfunctions").describe_execution(executionArn=arn)["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise ConsoleError(
                    HTTPStatus.GATEWAY_TIMEOUT,
                    f"the task is cancelled, but its execution did not stop within {STOP_DEADLINE_SECONDS:g} s "
                    "(is the cancel pipe running?)",
                )
            self._deps.sleep(STOP_POLL_SECONDS)

    # -- submitting ----------------------------------------------------------------------------------------

    def task_types(self) -> dict[str, Any]:
        """The registry's types with their params' JSON schemas (what `taskrail types --json` prints)."""
        types = [{"type": t.name, "summary": t.summary, "paramsSchema": t.params_schema} for t in type_catalog()]
        return {"types": types, "canSubmit": self._deps.submitter() is not None}

    def submit(self, body: Any) -> dict[str, Any]:
        """POST /tasks through the API as the form's user: the API and Validate decide, as for the CLI."""
        if not (isinstance(body, dict) and isinstance(body.get("type"), str) and isinstance(body.get("params"), dict)):
            raise ConsoleError(HTTPStatus.BAD_REQUEST, 'the body must be {"type": "<task type>", "params": {...}}')
        client = self._deps.submitter()
        if client is None:
            raise ConsoleError(HTTPStatus.CONFLICT, "this console has no user to submit as")
        try:
            accepted = client.submit(body["type"], body["params"], None)
        except ApiError as error:
            raise ConsoleError(HTTPStatus(error.status), error.message) from None
        return {"taskId": accepted["taskId"], "status": accepted["status"]}

    # -- live progress -------------------------------------------------------------------------------------

    def live_changes(self, after: str | None) -> dict[str, Any]:
        """The changes pushed since ``after`` (a long poll: up to LIVE_WAIT_SECONDS), relayed from the stack's
        WebSocket channel; ``{"channel": null, ...}`` when there is none, and the page polls instead."""
        feed = self._deps.live()
        if feed is None:
            return {"channel": None, "reason": "no WebSocket channel"}
        try:
            since = int(after or 0)
        except ValueError:
            raise ConsoleError(HTTPStatus.BAD_REQUEST, "after must be a whole number") from None
        sequence, changes = feed.changes_after(since, LIVE_WAIT_SECONDS)
        return {"channel": "websocket", "url": feed.url, "sequence": sequence, "changes": changes}

    # -- the local mailbox ---------------------------------------------------------------------------------

    def mail(self) -> dict[str, Any]:
        """What `taskrail mail --json` shows: each message, a notification's body parsed."""
        messages = []
        for message in self._deps.mail():
            shown = dict(message)
            with contextlib.suppress(ValueError):
                shown["message"] = json.loads(str(message.get("body", "")))
            messages.append(shown)
        return {"messages": messages}

    def confirm_mail(self, body: Any) -> dict[str, Any]:
        """ConfirmSubscription with a confirmation message's token: what the link in AWS's email does."""
        token = body.get("token") if isinstance(body, dict) else None
        found = [m for m in self._deps.mail() if token and m.get("token") == token]
        if not found:
            raise ConsoleError(HTTPStatus.NOT_FOUND, "no confirmation message has this token")
        with _aws_errors():
            answer = self.aws("sns").confirm_subscription(TopicArn=found[0]["topic_arn"], Token=token)
        return {"confirmed": answer["SubscriptionArn"]}

    # -- routing -----------------------------------------------------------------------------------------

    def route(self, method: str, parts: list[str], query: dict[str, str], body: Any = None) -> Any:  # noqa: PLR0911, C901 - one return per endpoint
        match method, parts:
            case "GET", ["api", "types"]:
                return self.task_types()
            case "GET", ["api", "live"]:
                return self.live_changes(query.get("after"))
            case "GET", ["api", "mail"]:
                return self.mail()
            case "POST", ["api", "mail", "confirm"]:
                return self.confirm_mail(body)
            case "POST", ["api", "tasks"]:
                return self.submit(body)
            case "GET", ["api", "workflow"]:
                return self.workflow()
            case "GET", ["api", "executions"]:
                return self.executions(query.get("status") or None, query.get("limit"))
            case "GET", ["api", "executions", arn]:
                return self.execution(arn)
            case "POST", ["api", "executions", arn, "stop"]:
                return self.stop(arn)
            case "POST", ["api", "executions", arn, "redrive"]:
                return self.redrive(arn)
            case "POST", ["api", "tasks", task_id, "replay"]:
                return self.replay(task_id)
        raise ConsoleError(HTTPStatus.NOT_FOUND, f"no such endpoint: {method} /{'/'.join(parts)}")


def shown_status(arn: str, execution_status: str, task: dict[str, Any]) -> str:
    """The task's status when the execution ended holding the ended task in a way that status can end one
    (:data:`SHOWN_FROM`), otherwise the execution's."""
    status = str(task.get("status"))
    holds = task.get("executionArn") == arn and status in TERMINAL_STATUSES
    return status if holds and execution_status in SHOWN_FROM[status] else execution_status


def _runs_in(task: dict[str, Any], arn: str) -> bool:
    """The task is the execution's to cancel: QUEUED (a replay stopped before its claim), or RUNNING in it."""
    status = task.get("status")
    return status == Status.QUEUED or (status == Status.RUNNING and task.get("executionArn") == arn)


def _limit(value: str | int | None) -> int:
    if value in (None, ""):
        return 100
    try:
        limit = int(value)  # type: ignore[arg-type]
    except ValueError:
        raise ConsoleError(HTTPStatus.BAD_REQUEST, "limit must be a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ConsoleError(HTTPStatus.BAD_REQUEST, f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def _attribute(value: dict[str, Any]) -> Any:
    if "N" in value:
        number = float(value["N"])
        return int(number) if number.is_integer() else number
    return next(iter(value.values()))


# -- HTTP ----------------------------------------------------------------------------------------------------


class _ConsoleHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], service: ConsoleService, guard: HostGuard) -> None:
        super().__init__(address, _Handler)
        self.service = service
        self.guard = guard


class _Handler(BaseHTTPRequestHandler):
    server_version = "taskrail-console"

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _dispatch(self, method: str) -> None:
        try:
            self._check_host()
            url = urlsplit(self.path)
            if method == "GET" and not url.path.startswith("/api/"):
                self._static(url.path)
                return
            if method == "POST" and self.headers.get(ACTION_HEADER) != "1":
                raise ConsoleError(HTTPStatus.FORBIDDEN, f"actions need the {ACTION_HEADER} header")
            parts = [unquote(p) for p in url.path.split("/") if p]
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            service: ConsoleService = self.server.service  # type: ignore[attr-defined]
            self._send_json(HTTPStatus.OK, service.route(method, parts, query, self._json_body(method)))
        except ConsoleError as error:
            self._send_json(error.status, {"message": error.message})
        except (BrokenPipeError, ConnectionResetError):
            return  # the page went away (a long poll of /api/live outlives a closed tab)
        except Exception as error:
            log.exception("console request %s %s failed", method, self.path)
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"message": f"{type(error).__name__}: {error}"})

    def _json_body(self, method: str) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if method != "POST" or length == 0:
            return None
        if length > MAX_BODY_BYTES:
            raise ConsoleError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body may take at most {MAX_BODY_BYTES} bytes")
        try:
            return json.loads(self.rfile.read(length))
        except ValueError as error:
            raise ConsoleError(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {error}") from None

    def _check_host(self) -> None:
        # The shared guard of every local listener: a DNS-rebinding page arrives with its own host name. The
        # console is the one listener meant for a browser, so browsers pass; its actions need ACTION_HEADER.
        guard: HostGuard = self.server.guard  # type: ignore[attr-defined]
        refused = guard(self)
        if refused is not None:
            raise ConsoleError(HTTPStatus.FORBIDDEN, refused.message)

    def _static(self, path: str) -> None:
        name = "index.html" if path in ("/", "/index.html") else path.removeprefix("/static/")
        file = STATIC_DIR / name
        if "/" in name or file.suffix not in STATIC_TYPES or not file.is_file():
            raise ConsoleError(HTTPStatus.NOT_FOUND, f"no such page: {path}")
        self._send(HTTPStatus.OK, file.read_bytes(), f"{STATIC_TYPES[file.suffix]}; charset=utf-8")

    def _send_json(self, status: HTTPStatus, payload: Any) -> None:
        self._send(status, json.dumps(payload, default=str).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:")
        self.end_headers()
        self.wfile.write(body)


class ConsoleServer:
    """The console on ``http://127.0.0.1:<port>/`` (port 0: any free port), served from a daemon thread."""

    def __init__(
        self, dependencies: ConsoleDependencies, *, guard: HostGuard, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if host not in BIND_HOSTS:
            raise ValueError(f"the console serves on the loopback interface only, not {host}")
        self.service = ConsoleService(dependencies)
        self._guard = guard
        self._address = (host, port)
        self._server: _ConsoleHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the console is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> str:
        self._server = _ConsoleHTTPServer(self._address, self.service, self._guard)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="taskrail-console", daemon=True
        )
        self._thread.start()
        log.info("console on %s", self.url)
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None
