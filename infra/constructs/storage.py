"""Durable storage: the Tasks table (the storage-first landing place), idempotency records, results bucket."""

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from task_common import contract

# The indexes this construct declares, under the contract's names. The other constructs take the names from the
# construct (``Storage.user_index``, ``Storage.pending_index``) and hand them on through the template: the API's
# mapping templates and the reconciler's environment.
USER_INDEX = contract.USER_INDEX
PENDING_INDEX = contract.PENDING_INDEX
OUTCOME_PENDING_INDEX = contract.OUTCOME_PENDING_INDEX
# What the reconciler reads from the pending index besides its keys (taskId, pendingShard, createdAt): the status it
# filters on, the other required fields of task_common.models.TaskRecord and the two it acts on. params and progress
# stay out of it: every byte projected is written again at each status change, and a GSI that cannot take its
# writes throttles the table's storage-first PutItem (docs/AWS-REVIEW.md, DynamoDB).
PENDING_INDEX_ATTRIBUTES = ("status", "userId", "type", "attempt", "executionArn")
# What GET /tasks renders of each task besides the keys (taskId, userId, createdAt): api_templates/task_fields.vtl
# without params (GET /tasks/{taskId} returns them). Not ALL: params (up to 256,000 bytes) would be written into
# the index twice more with every task. Changing it means renaming USER_INDEX (a GSI's projection cannot change).
USER_INDEX_ATTRIBUTES = (
    "type",
    "status",
    "progress",
    "attempt",
    "cancelledAt",
    "startedAt",
    "updatedAt",
    "finishedAt",
    "resultLocation",
    "error",
    "cause",
    "executionArn",
    "idempotencyKey",
)
# Objects stay readable by GetObject in every storage class they pass through (Glacier Flexible Retrieval would
# answer InvalidObjectState to `taskrail result` until restored).
TASK_OBJECT_TRANSITIONS = (
    (s3.StorageClass.INFREQUENT_ACCESS, Duration.days(30)),
    (s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, Duration.days(90)),
)
NONCURRENT_VERSIONS_KEPT_FOR = Duration.days(30)
INCOMPLETE_UPLOADS_ABORTED_AFTER = Duration.days(7)
SERVER_ACCESS_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"


def secure_table(
    scope: Construct, construct_id: str, *, partition_key: str, removal_policy: RemovalPolicy, **kwargs: Any
) -> dynamodb.Table:
    """A table as every table of the stack is made: a string partition key ``partition_key``, on demand,
    point-in-time recovery, AWS-managed encryption (this module's tables, LiveProgress's, UsersAndProfiles')."""
    return dynamodb.Table(
        scope,
        construct_id,
        partition_key=dynamodb.Attribute(name=partition_key, type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
        removal_policy=removal_policy,
        **kwargs,
    )


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        # Server access logs are delivered under a bucket policy for logging.s3.amazonaws.com (conditioned on the
        # source bucket and account), with ACLs disabled, as "Enabling Amazon S3 server access logging" recommends,
        # instead of the LogDeliveryWrite ACL. Set here, before any child exists, so it holds for this construct only.
        self.node.set_context(SERVER_ACCESS_LOGS_USE_BUCKET_POLICY, True)
        self.tasks_table = secure_table(
            self,
            "TasksTable",
            partition_key="taskId",
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            # DeletionPolicy Retain guards against a stack delete only; this guards against DeleteTable. A stack that
            # is meant to be destroyed (removal_policy DESTROY) must stay deletable.
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
            removal_policy=removal_policy,
        )
        # A number: the API writes $context.requestTimeEpoch, and DynamoDB rejects a write whose index key has
        # another type than the index declares.
        created_at = dynamodb.Attribute(name="createdAt", type=dynamodb.AttributeType.NUMBER)
        self.user_index, self.pending_index = USER_INDEX, PENDING_INDEX
        self.outcome_pending_index = OUTCOME_PENDING_INDEX
        # The list response renders the listed fields only (no params).
        self.tasks_table.add_global_secondary_index(
            index_name=self.user_index,
            partition_key=dynamodb.Attribute(name="userId", type=dynamodb.AttributeType.STRING),
            sort_key=created_at,
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(USER_INDEX_ATTRIBUTES),
        )
        # Sparse and sharded: an item is in it only while QUEUED or RUNNING (pendingShard is set by the submit, a
        # requeue and a resume, removed by every terminal write), under one of 16 partition keys, so no key is hot.
        # The reconciler queries each shard.
        self.tasks_table.add_global_secondary_index(
            index_name=self.pending_index,
            partition_key=dynamodb.Attribute(name=contract.PENDING_SHARD_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=created_at,
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=list(PENDING_INDEX_ATTRIBUTES),
        )
        # Sparse: an item is in it only while its outcome is undelivered (outcomePending set by the terminal write,
        # removed by the outbox's mark, normally within a second), so it holds a handful of items, two index writes
        # per finished task, keys only. The reconciler re-triggers those older than its threshold.
        self.tasks_table.add_global_secondary_index(
            index_name=self.outcome_pending_index,
            partition_key=dynamodb.Attribute(name="outcomePending", type=dynamodb.AttributeType.STRING),
            sort_key=created_at,
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        )

        # Powertools idempotency records for the process function; items expire by TTL.
        self.idempotency_table = secure_table(
            self,
            "IdempotencyTable",
            partition_key="id",
            time_to_live_attribute="expiration",
            removal_policy=RemovalPolicy.DESTROY,
        )

        self.access_logs_bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(90))],
            removal_policy=removal_policy,
            auto_delete_objects=False,
        )
        self.results_bucket = s3.Bucket(
            self,
            "ResultsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="results/",
            # Stated, not left to a default: objects under 128 KB (most results) never transition, so none is billed
            # the 128 KB minimum of the colder classes.
            transition_default_minimum_object_size=s3.TransitionDefaultMinimumObjectSize.ALL_STORAGE_CLASSES_128_K,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="tasks-to-colder-storage",
                    prefix=contract.TASKS_PREFIX,
                    transitions=[
                        s3.Transition(storage_class=storage_class, transition_after=after)
                        for storage_class, after in TASK_OBJECT_TRANSITIONS
                    ],
                ),
                # The whole bucket (users/ and diagnostics/ too): old versions, delete markers, abandoned uploads.
                s3.LifecycleRule(
                    id="expire-old-versions-and-uploads",
                    noncurrent_version_expiration=NONCURRENT_VERSIONS_KEPT_FOR,
                    expired_object_delete_marker=True,
                    abort_incomplete_multipart_upload_after=INCOMPLETE_UPLOADS_ABORTED_AFTER,
                ),
            ],
            removal_policy=removal_policy,
        )
