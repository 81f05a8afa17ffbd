"""An item near 400 KB cannot poison its executions (issue 9, defect 5): the edge bounds the request, and every
later write on the biggest item the API accepts still fits DynamoDB's item limit.

DynamoDB: "The maximum item size in DynamoDB is 400 KB, which includes both attribute name binary length (UTF-8
length) and attribute value lengths (again binary length)" (developer guide, "Service, account, and table quotas":
Items); a PutItem over it is ``ValidationException: Item size has exceeded the maximum allowed size``, an
UpdateItem ``... Item size to update has exceeded the maximum allowed size``. moto 5.2.5 enforces both (at 405,000
bytes, a little stricter), asserted first below, so a write that fits here fits on AWS.

The later writes are the real ones: the workflow's DynamoDB states read from ``asl/task_lifecycle.asl.json``
(ClaimTask, MarkRejected, MarkSucceeded) and the failure recorder's (RecordTaskFailed, from
``asl/failure_recorder.asl.json``, issue 19) with every ``.$`` value at its largest, the progress and
reconciler writes through the functions' own adapter (``task_common.aws.DynamoDBTaskStore``), replay's reset, and
the API's cancel; Step Functions gives an error up to 256 and a cause up to 32,768 characters.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.constructs.api_limits import (
    MAX_STORED_PARAMS_BYTES,
    STEP_FUNCTIONS_MAX_CAUSE_CHARS,
    STEP_FUNCTIONS_MAX_ERROR_CHARS,
)
from task_common.aws import DynamoDBTaskStore
from task_common.models import TaskStatus
from taskrail.client import TaskrailClient
from taskrail.local.services.dynamodb import install_item_size, uninstall_item_size
from tests.local.local_api import LocalApi, local_api

ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE_ASL = ROOT / "asl" / "task_lifecycle.asl.json"
RECORDER_ASL = ROOT / "asl" / "failure_recorder.asl.json"
WIDEST = "😀"  # 4 bytes in UTF-8: the most a character can take
# The largest values Step Functions can put where the workflow's writes read them.
ENTERED_TIME = "2026-12-01T10:00:00.123456789Z"
EXECUTION_ARN = f"arn:aws-us-gov:states:us-gov-west-1:123456789012:execution:{'S' * 80}:{'e' * 80}"
ERROR = WIDEST * STEP_FUNCTIONS_MAX_ERROR_CHARS
CAUSE = WIDEST * STEP_FUNCTIONS_MAX_CAUSE_CHARS
KEY = "k" * 1_400  # about the longest Idempotency-Key whose task id fits DynamoDB's 2,048-byte partition key


@pytest.fixture(scope="module")
def api(template: dict[str, Any], template_path: Path) -> Iterator[LocalApi]:
    with local_api(template, template_path) as running:
        yield running


@pytest.fixture(scope="module")
def owner(api: LocalApi) -> TaskrailClient:
    return api.client("ci")


@pytest.fixture(scope="module")
def ddb(api: LocalApi) -> Any:
    return api.aws("dynamodb")


def params_taking(size: int, char: str = "x") -> dict[str, str]:
    """Params whose JSON text takes exactly ``size`` bytes in UTF-8, made of ``char`` (1 or 3 bytes) and ASCII."""
    room = size - len(b'{"a":""}')
    width = len(char.encode())
    return {"a": char * (room // width) + "x" * (room % width)}


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's count for string and small-number attributes: UTF-8 of names and values."""
    total = 0
    for name, value in item.items():
        ((kind, text),) = value.items()
        total += len(name.encode()) + (len(text.encode()) if kind == "S" else len(text) // 2 + 1)
    return total


def stored(ddb: Any, api: LocalApi, task_id: str) -> dict[str, Any]:
    return ddb.get_item(TableName=api.table, Key={"taskId": {"S": task_id}}, ConsistentRead=True)["Item"]


# --------------------------------------------------------------------------------------------------
# moto enforces the limit as DynamoDB does (rule 8: the local stack must not be more permissive)
# --------------------------------------------------------------------------------------------------


def test_moto_refuses_a_put_and_an_update_over_the_item_limit(api: LocalApi, ddb: Any):
    task_id = f"size-{uuid.uuid4()}"
    with pytest.raises(ClientError) as put:
        ddb.put_item(TableName=api.table, Item={"taskId": {"S": task_id}, "blob": {"S": "x" * 409_600}})
    ddb.put_item(TableName=api.table, Item={"taskId": {"S": task_id}, "blob": {"S": "x" * 400_000}})
    with pytest.raises(ClientError) as update:
        ddb.update_item(
            TableName=api.table,
            Key={"taskId": {"S": task_id}},
            UpdateExpression="SET more = :more",
            ExpressionAttributeValues={":more": {"S": "y" * 9_600}},
        )

    assert put.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Item size has exceeded the maximum allowed size",
    }
    assert update.value.response["Error"] == {
        "Code": "ValidationException",
        "Message": "Item size to update has exceeded the maximum allowed size",
    }


# --------------------------------------------------------------------------------------------------
# The edge
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["x", "日"], ids=["ascii", "3-byte"])
def test_params_at_the_bound_are_accepted_and_one_byte_more_is_413(owner: TaskrailClient, ddb, api, char: str):
    at_bound = params_taking(MAX_STORED_PARAMS_BYTES, char)
    over = params_taking(MAX_STORED_PARAMS_BYTES + 1, char)

    accepted = owner.submit("text.stats", at_bound)
    status, body = owner.request("POST", "/tasks", {"type": "text.stats", "params": over})

    assert len(stored(ddb, api, accepted["taskId"])["params"]["S"].encode()) == MAX_STORED_PARAMS_BYTES
    assert status == 413, body
    assert body["message"].startswith(f"request too large: params may take at most {MAX_STORED_PARAMS_BYTES} bytes")
    assert "S3" in body["message"]
    assert api.gateway.internal_errors == []


def test_a_refused_submission_stores_nothing(owner: TaskrailClient, ddb, api):
    key = f"too-large-{uuid.uuid4()}"
    status, _ = owner.request(
        "POST",
        "/tasks",
        {"type": "diagnostic.echo", "params": params_taking(MAX_STORED_PARAMS_BYTES + 1)},
        {"Idempotency-Key": key},
    )

    items = ddb.scan(
        TableName=api.table, FilterExpression="idempotencyKey = :k", ExpressionAttributeValues={":k": {"S": key}}
    )
    assert status == 413
    assert items["Items"] == []


# --------------------------------------------------------------------------------------------------
# Every later write on the worst-case item
# --------------------------------------------------------------------------------------------------


def lifecycle_writes() -> dict[str, dict[str, Any]]:
    """The workflows' DynamoDB updateItem states, by name, as the generated ASL defines them: the lifecycle's and
    the failure recorder's (every failure is recorded there since issue 19)."""
    writes: dict[str, dict[str, Any]] = {}
    for asl in (LIFECYCLE_ASL, RECORDER_ASL):
        for name, state in json.loads(asl.read_text())["States"].items():
            if str(state.get("Resource", "")).endswith(":dynamodb:updateItem"):
                writes[name] = state["Parameters"]
    return writes


#: The largest value Step Functions can give, by the last field name of a JSONPath the workflows read (any
#: object: the context object's ``$$.Execution.Id``, the status-change detail's ``$.executionArn`` and ``$.error``,
#: a Catch's ``$.Error``), so that a moved or renamed path in the workflow needs no edit here. A redrive count is
#: at most 1,000 ("Redriving executions", Step Functions Developer Guide).
WIDEST_BY_FIELD: dict[str, str] = {
    "id": EXECUTION_ARN,
    "executionarn": EXECUTION_ARN,
    "enteredtime": ENTERED_TIME,
    "error": ERROR,
    "cause": CAUSE,
    "redrivecount": "1000",
}


def widest(path: str) -> str:
    """The largest value Step Functions can give for a JSONPath (or intrinsic over one) the workflows read."""
    inner = re.fullmatch(r"States\.JsonToString\((.+)\)", path)
    if inner:
        return widest(inner[1])
    if path.startswith("States.Format('s3://"):
        return f"s3://{'b' * 63}/tasks/{'t' * 1_100}/result.json"
    field = path.rsplit(".", 1)[-1].lower()
    if path.startswith("$") and field in WIDEST_BY_FIELD:
        return WIDEST_BY_FIELD[field]
    raise AssertionError(f"the workflow writes {path}: give this test its largest value")


def run_workflow_write(ddb: Any, table: str, task_id: str, parameters: dict[str, Any]) -> None:
    values = {}
    for name, value in parameters["ExpressionAttributeValues"].items():
        ((kind, given),) = value.items()
        values[name] = {kind.removesuffix(".$"): widest(given) if kind.endswith(".$") else given}
    request = {
        key: value for key, value in parameters.items() if key not in ("TableName", "Key", "ExpressionAttributeValues")
    }
    ddb.update_item(**request, TableName=table, Key={"taskId": {"S": task_id}}, ExpressionAttributeValues=values)


@pytest.fixture
def worst_case_task(owner: TaskrailClient) -> str:
    """The biggest submission the API accepts: params at the bound, made of 3-byte characters, the longest key."""
    return owner.submit(
        "text.stats", params_taking(MAX_STORED_PARAMS_BYTES, "日"), idempotency_key=f"{KEY}{uuid.uuid4().hex[:8]}"
    )["taskId"]


def test_the_workflow_writes_the_test_covers_are_all_of_them():
    assert set(lifecycle_writes()) == {"ClaimTask", "RecordTaskFailed", "MarkRejected", "MarkSucceeded"}


@pytest.mark.parametrize("outcome", ["RecordTaskFailed", "MarkRejected", "MarkSucceeded"])
def test_the_worst_case_item_is_claimed_progressed_and_finished(api, ddb, worst_case_task: str, outcome: str):
    writes = lifecycle_writes()
    store = DynamoDBTaskStore(api.table, ddb)

    # When the workflow claims it, the function reports progress, and the workflow records the outcome
    run_workflow_write(ddb, api.table, worst_case_task, writes["ClaimTask"])
    store.update_progress(worst_case_task, 99)
    run_workflow_write(ddb, api.table, worst_case_task, writes[outcome])

    # Then every write succeeded and the item holds them all, under the limit
    item = stored(ddb, api, worst_case_task)
    assert item["status"]["S"] in ("FAILED", "REJECTED", "SUCCEEDED")
    assert item["executionArn"] == {"S": EXECUTION_ARN}
    if outcome != "MarkSucceeded":
        assert item["cause"] == {"S": CAUSE}
    print(f"worst case after ClaimTask, progress and {outcome}: {item_size(item)} bytes")
    assert item_size(item) <= 405_000


def test_the_worst_case_item_is_replayed_then_failed_by_the_reconciler(
    api, ddb, owner: TaskrailClient, worst_case_task
):
    writes = lifecycle_writes()
    store = DynamoDBTaskStore(api.table, ddb)
    run_workflow_write(ddb, api.table, worst_case_task, writes["ClaimTask"])
    run_workflow_write(ddb, api.table, worst_case_task, writes["RecordTaskFailed"])

    # When it is replayed (reset to QUEUED, as taskrail replay does), claimed again, and its execution ends
    # outside the Catch path, so the reconciler records the failure with the largest cause
    ddb.update_item(  # TaskrailClient._replay_one's reset
        TableName=api.table,
        Key={"taskId": {"S": worst_case_task}},
        UpdateExpression="SET #s = :queued REMOVE #e, #c",
        ConditionExpression="#s = :failed",
        ExpressionAttributeNames={"#s": "status", "#e": "error", "#c": "cause"},
        ExpressionAttributeValues={":queued": {"S": "QUEUED"}, ":failed": {"S": "FAILED"}},
    )
    run_workflow_write(ddb, api.table, worst_case_task, writes["ClaimTask"])
    record = store.get_task(worst_case_task)
    assert record.status is TaskStatus.RUNNING
    written = store.fail_task(record, execution_arn=EXECUTION_ARN, error=ERROR, cause=CAUSE)

    # Then the reconciler's write fits too
    item = stored(ddb, api, worst_case_task)
    assert written is True
    assert (item["status"]["S"], item["attempt"]["N"], item["cause"]["S"]) == ("FAILED", "2", CAUSE)


def test_the_worst_case_item_can_be_cancelled(owner: TaskrailClient, api, ddb, worst_case_task: str):
    run_workflow_write(ddb, api.table, worst_case_task, lifecycle_writes()["ClaimTask"])

    assert owner.cancel(worst_case_task) == {"taskId": worst_case_task, "status": "CANCELLED"}
    assert "cancelledAt" in stored(ddb, api, worst_case_task)


@pytest.mark.parametrize("outcome", ["RecordTaskFailed", "MarkSucceeded"])
def test_the_same_body_again_on_the_finished_worst_case_item_is_202_and_fits(
    api, ddb, owner: TaskrailClient, outcome: str
):
    # Given the worst-case item finished (the largest cause, or the result), its terminal write left the pending index
    params, key = params_taking(MAX_STORED_PARAMS_BYTES, "日"), f"{KEY}{uuid.uuid4().hex[:8]}"
    task_id = owner.submit("text.stats", params, idempotency_key=key)["taskId"]
    writes = lifecycle_writes()
    run_workflow_write(ddb, api.table, task_id, writes["ClaimTask"])
    run_workflow_write(ddb, api.table, task_id, writes[outcome])
    finished = stored(ddb, api, task_id)

    # When the same body is sent again under the same key (the submission's UpdateItem compares the whole params),
    # with the local stack's measure of an UpdateItem's item (moto counts a value SET again twice: ITEM_SIZE)
    install_item_size()
    try:
        status, body = owner.request(
            "POST", "/tasks", {"type": "text.stats", "params": params}, {"Idempotency-Key": key}
        )
    finally:
        uninstall_item_size()

    # Then it is the stored task, and the update (it re-adds only the pending shard) and the reconciler's removal fit
    assert (status, body) == (202, {"taskId": task_id, "status": finished["status"]["S"], "duplicate": True}), body
    retried = stored(ddb, api, task_id)
    assert {name: value for name, value in retried.items() if name != "pendingShard"} == finished
    print(f"worst case after {outcome} and a same-body retry: {item_size(retried)} bytes")
    store = DynamoDBTaskStore(api.table, ddb)
    assert store.leave_pending_index(store.get_task(task_id))
    assert stored(ddb, api, task_id) == finished
