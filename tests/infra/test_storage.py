"""The Storage construct against what AWS documents for S3 lifecycle and DynamoDB indexes (docs/AWS-REVIEW.md)."""

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.constructs.api import load_template
from infra.constructs.storage import (
    OUTCOME_PENDING_INDEX,
    PENDING_INDEX,
    PENDING_INDEX_ATTRIBUTES,
    USER_INDEX,
    USER_INDEX_ATTRIBUTES,
)
from task_common.aws import DynamoDBTaskStore
from task_common.contract import PENDING_SHARD_ATTRIBUTE, PENDING_SHARDS, pending_shard
from task_common.models import TaskRecord, TaskStatus
from taskrail.local.vtl import ApiRequest, render_response
from tests.infra.test_template import resources_of

# GetObject answers InvalidObjectState for these until the object is restored ("InvalidObjectState", Amazon S3 API:
# Glacier Flexible Retrieval, Glacier Deep Archive).
CLASSES_THAT_NEED_A_RESTORE = {"GLACIER", "DEEP_ARCHIVE"}


def results_bucket(template: dict[str, Any]) -> dict[str, Any]:
    (props,) = [
        b["Properties"]
        for b in resources_of(template, "AWS::S3::Bucket").values()
        if any(r.get("Prefix") == "tasks/" for r in b["Properties"].get("LifecycleConfiguration", {}).get("Rules", []))
    ]
    return props


def tasks_table(template: dict[str, Any]) -> dict[str, Any]:
    (props,) = [
        t["Properties"]
        for t in resources_of(template, "AWS::DynamoDB::Table").values()
        if t["Properties"]["KeySchema"] == [{"AttributeName": "taskId", "KeyType": "HASH"}]
    ]
    return props


def pending_index(template: dict[str, Any]) -> dict[str, Any]:
    (index,) = [i for i in tasks_table(template)["GlobalSecondaryIndexes"] if i["IndexName"] == PENDING_INDEX]
    return index


def test_task_objects_stay_readable_by_get_object_in_every_storage_class_they_reach(template):
    rules = results_bucket(template)["LifecycleConfiguration"]["Rules"]
    transitions = [t for rule in rules for t in rule.get("Transitions", [])]

    assert transitions, "the tasks/ rule moves objects to colder storage"
    assert not {t["StorageClass"] for t in transitions} & CLASSES_THAT_NEED_A_RESTORE, (
        "`taskrail result` and a claim-checked input.json would answer InvalidObjectState until restored"
    )


def test_objects_under_128_kb_never_transition(template):
    # Stated in the template rather than left to S3's default ("AWS::S3::Bucket LifecycleConfiguration",
    # TransitionDefaultMinimumObjectSize): a small object in a colder class is billed as 128 KB.
    lifecycle = results_bucket(template)["LifecycleConfiguration"]

    assert lifecycle["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"


def test_old_versions_delete_markers_and_abandoned_uploads_expire_in_the_whole_bucket(template):
    rules = results_bucket(template)["LifecycleConfiguration"]["Rules"]
    bucket_wide = [r for r in rules if "Prefix" not in r and "Filter" not in r and r["Status"] == "Enabled"]

    assert any(r.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") for r in bucket_wide)
    assert any(r.get("ExpiredObjectDeleteMarker") is True for r in bucket_wide)
    assert any(r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") for r in bucket_wide)


def test_the_retained_tasks_table_is_protected_from_delete_table(template):
    # DeletionPolicy Retain covers a stack delete only ("Using deletion protection to protect your table").
    assert tasks_table(template)["DeletionProtectionEnabled"] is True


def test_a_stack_meant_to_be_destroyed_keeps_a_deletable_table():
    from aws_cdk import App, RemovalPolicy, Stack
    from aws_cdk.assertions import Template

    from infra.constructs.storage import Storage

    stack = Stack(App(), "Disposable")
    Storage(stack, "Storage", removal_policy=RemovalPolicy.DESTROY)
    tables = Template.from_stack(stack).find_resources("AWS::DynamoDB::Table")

    assert all(not t["Properties"].get("DeletionProtectionEnabled") for t in tables.values())


def test_the_pending_index_projects_only_what_the_reconciler_reads(template):
    # ALL would copy params (up to 200 KB) and every progress update into it, and a GSI's back pressure throttles the
    # table's PutItem ("Understanding global secondary index (GSI) write throttling and back pressure in DynamoDB").
    projection = pending_index(template)["Projection"]

    assert projection["ProjectionType"] == "INCLUDE"
    assert set(projection["NonKeyAttributes"]) == set(PENDING_INDEX_ATTRIBUTES)
    assert not {"params", "progress"} & set(projection["NonKeyAttributes"])


def test_the_pending_index_is_keyed_by_shard_not_by_status(template):
    # A key per status (status-createdAt) put every new task into the one QUEUED partition key, hot by construction
    # ("Key range throughput exceeded (hot partitions)"); the shard spreads them over PENDING_SHARDS keys.
    index = pending_index(template)
    types = {a["AttributeName"]: a["AttributeType"] for a in tasks_table(template)["AttributeDefinitions"]}

    assert index["KeySchema"] == [
        {"AttributeName": PENDING_SHARD_ATTRIBUTE, "KeyType": "HASH"},
        {"AttributeName": "createdAt", "KeyType": "RANGE"},
    ]
    assert (types[PENDING_SHARD_ATTRIBUTE], types["createdAt"]) == ("S", "N")
    assert len(PENDING_SHARDS) >= 10 and len(set(PENDING_SHARDS)) == len(PENDING_SHARDS)
    assert not any(i["IndexName"] == "status-createdAt" for i in tasks_table(template)["GlobalSecondaryIndexes"])


def test_the_python_writers_spread_tasks_over_every_shard():
    shards = [pending_shard(f"t-{n}") for n in range(400)]

    assert set(shards) == set(PENDING_SHARDS)
    assert max(shards.count(s) for s in PENDING_SHARDS) < 400 / 4


def test_every_required_field_of_a_task_record_is_in_the_pending_index(template):
    index = pending_index(template)
    available = (
        {k["AttributeName"] for k in index["KeySchema"]} | {"taskId"} | set(index["Projection"]["NonKeyAttributes"])
    )
    required = {field.alias or name for name, field in TaskRecord.model_fields.items() if field.is_required()}

    assert required <= available, f"the reconciler could not build a TaskRecord without {required - available}"


@pytest.fixture
def tasks_table_in_moto(template):
    """The Tasks table as the template declares it (keys, indexes, projections) in moto, which applies projections
    to index queries as DynamoDB does."""
    props = tasks_table(template)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="Tasks",
            KeySchema=props["KeySchema"],
            AttributeDefinitions=props["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=[
                {k: i[k] for k in ("IndexName", "KeySchema", "Projection")} for i in props["GlobalSecondaryIndexes"]
            ],
        )
        yield client


def put_task(client: Any, task_id: str, status: str, created_at: int, **extra: str) -> None:
    item = {
        "taskId": {"S": task_id},
        "userId": {"S": "alice"},
        "type": {"S": "text.stats"},
        "params": {"S": '{"text": "' + "x" * 150_000 + '"}'},
        "status": {"S": status},
        "progress": {"N": "40"},
        "attempt": {"N": "2"},
        "createdAt": {"N": str(created_at)},
        "executionArn": {"S": f"arn:aws:states:us-east-1:123456789012:execution:lifecycle:{task_id}"},
    }
    client.put_item(TableName="Tasks", Item=item | {name: {"S": value} for name, value in extra.items()})


def test_the_reconciler_reads_stuck_and_running_tasks_through_the_projected_index(tasks_table_in_moto):
    client = tasks_table_in_moto
    put_task(client, "t-1", "RUNNING", 1000, pendingShard=pending_shard("t-1"))

    (task,) = DynamoDBTaskStore("Tasks", dynamodb_client=client).tasks_with_status(
        TaskStatus.RUNNING, created_before=2000, limit=10
    )

    assert (task.task_id, task.user_id, task.status, task.attempt) == ("t-1", "alice", TaskStatus.RUNNING, 2)
    assert task.execution_arn == "arn:aws:states:us-east-1:123456789012:execution:lifecycle:t-1"
    assert task.params is None, "params are not copied into the pending index"


def test_the_pending_index_holds_only_unfinished_tasks_and_the_reconciler_reads_every_shard(tasks_table_in_moto):
    client = tasks_table_in_moto
    # Given QUEUED tasks in every shard, RUNNING ones in some, and finished ones (no pendingShard: every terminal
    # write removes it)
    for n, shard in enumerate(PENDING_SHARDS):
        put_task(client, f"q-{shard}", "QUEUED", 1000 + n, pendingShard=shard)
        if n % 3 == 0:
            put_task(client, f"r-{shard}", "RUNNING", 500 + n, pendingShard=shard)
    for status in ("SUCCEEDED", "REJECTED", "FAILED", "CANCELLED"):
        put_task(client, f"done-{status}", status, 10)
    store = DynamoDBTaskStore("Tasks", dynamodb_client=client)

    # When the reconciler asks for each status
    queued = store.tasks_with_status(TaskStatus.QUEUED, created_before=5000, limit=100)
    running = store.tasks_with_status(TaskStatus.RUNNING, created_before=5000, limit=100)
    oldest = store.tasks_with_status(TaskStatus.QUEUED, created_before=5000, limit=3)

    # Then it found every one of them, oldest first across the shards, and none of the finished ones
    assert [t.task_id for t in queued] == [f"q-{shard}" for shard in PENDING_SHARDS]
    assert [t.task_id for t in running] == [f"r-{shard}" for shard in PENDING_SHARDS[::3]]
    assert [t.task_id for t in oldest] == [f"q-{shard}" for shard in PENDING_SHARDS[:3]]
    index = [
        item["taskId"]["S"]
        for shard in PENDING_SHARDS
        for item in client.query(
            TableName="Tasks",
            IndexName=PENDING_INDEX,
            KeyConditionExpression="pendingShard = :s",
            ExpressionAttributeValues={":s": {"S": shard}},
        )["Items"]
    ]
    assert not [task_id for task_id in index if task_id.startswith("done-")]


def test_access_logs_are_delivered_under_a_bucket_policy_with_acls_disabled(template):
    # "Enabling Amazon S3 server access logging" (S3 User Guide): grant logging.s3.amazonaws.com in the target
    # bucket's policy, conditioned on the source bucket and account, rather than the LogDeliveryWrite ACL.
    buckets = resources_of(template, "AWS::S3::Bucket")
    (source_id,) = [k for k, b in buckets.items() if "LoggingConfiguration" in b["Properties"]]
    target_id = buckets[source_id]["Properties"]["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    target = buckets[target_id]
    policy = next(
        p
        for p in resources_of(template, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": target_id}
    )
    (grant,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]

    assert "AccessControl" not in target["Properties"]
    assert target["Properties"]["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert grant["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert grant["Action"] == "s3:PutObject"
    assert grant["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::GetAtt": [source_id, "Arn"]}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_the_outcome_pending_index_is_sparse_and_keys_only(template):
    # Only items with outcomePending (undelivered outcomes) are in it: the terminal writes set it, the outbox's mark
    # removes it, so it stays small; keys only, since the reconciler's touch is a conditional write on the table.
    (index,) = [i for i in tasks_table(template)["GlobalSecondaryIndexes"] if i["IndexName"] == OUTCOME_PENDING_INDEX]
    assert index["KeySchema"] == [
        {"AttributeName": "outcomePending", "KeyType": "HASH"},
        {"AttributeName": "createdAt", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    types = {a["AttributeName"]: a["AttributeType"] for a in tasks_table(template)["AttributeDefinitions"]}
    assert (types["outcomePending"], types["createdAt"]) == ("S", "N")


def test_the_user_index_projects_exactly_the_listed_fields(template):
    # ALL copied params (up to 256,000 bytes) and every progress update into the owner index: written twice more
    # for each task ("Projections", DynamoDB Developer Guide). The list no longer renders params.
    (index,) = [i for i in tasks_table(template)["GlobalSecondaryIndexes"] if i["IndexName"] == USER_INDEX]

    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert set(index["Projection"]["NonKeyAttributes"]) == set(USER_INDEX_ATTRIBUTES)
    assert "params" not in USER_INDEX_ATTRIBUTES


def test_a_listed_task_has_every_field_of_get_but_params(tasks_table_in_moto):
    # Given a task with every field the API renders, stored in the table as the template declares it
    client = tasks_table_in_moto
    put_task(
        client,
        "t-1",
        "FAILED",
        1_700_000_000_123,
        cancelledAt="ignored",
        startedAt="2026-12-01T10:00:00.000Z",
        updatedAt="2026-12-01T10:00:01.000Z",
        finishedAt="2026-12-01T10:00:02.000Z",
        resultLocation="s3://bucket/tasks/t-1/result.json",
        error="PermanentTaskError",
        cause="it broke",
        idempotencyKey="order-1",
    )
    client.update_item(
        TableName="Tasks",
        Key={"taskId": {"S": "t-1"}},
        UpdateExpression="SET cancelledAt = :at",
        ExpressionAttributeValues={":at": {"N": "1700000000999"}},
    )

    # When GET /tasks/{id} (GetItem) and GET /tasks (Query on the owner index) render it
    request = ApiRequest(method="GET", resource_path="/tasks", path="/tasks", identity={"user": "alice"})
    item = client.get_item(TableName="Tasks", Key={"taskId": {"S": "t-1"}})
    page = client.query(
        TableName="Tasks",
        IndexName=USER_INDEX,
        KeyConditionExpression="userId = :user",
        ExpressionAttributeValues={":user": {"S": "alice"}},
    )
    got = json.loads(render_response(load_template("get_task.response.vtl", "Tasks"), request, json.dumps(item)).body)
    listed = json.loads(
        render_response(load_template("list_tasks.response.vtl", "Tasks"), request, json.dumps(page)).body
    )

    # Then the list has everything GET has but params, read from the index's projection alone
    (task,) = listed["tasks"]
    assert got["params"] == {"text": "x" * 150_000}
    assert "params" not in task
    assert task == {name: value for name, value in got.items() if name != "params"}
    assert {"cancelledAt", "startedAt", "resultLocation", "error", "cause", "idempotencyKey"} <= set(task)
