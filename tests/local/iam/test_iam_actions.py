"""Each request the stack's principals send maps to the IAM action and resource AWS evaluates (iam/actions.py).

The requests are the ones botocore really sends (captured before they leave the client), so the mapping is tested
against the wire format, not a hand-written copy. Expected actions/resources: the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/) and each service's IAM page, e.g. DynamoDB
"Using IAM policy conditions for fine-grained access control" (an index is ``table/T/index/I``), S3 "Required
permissions for Amazon S3 API operations" (HeadObject needs s3:GetObject, ListObjectsV2 needs s3:ListBucket).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from taskrail.local.iam.actions import Access, HttpRequest, Unmapped, describe

ACCOUNT = "123456789012"
ENDPOINT = "http://127.0.0.1:4566"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Tasks"
MACHINE = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:lifecycle"
EXECUTION = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:lifecycle:t1"


class _Captured(Exception):
    def __init__(self, request: Any) -> None:
        self.request = request


def sent(service: str, operation: str, **params: Any) -> HttpRequest:
    """The request botocore sends for ``operation`` (signed, as a principal's client would send it)."""
    client = boto3.client(
        service, region_name="us-east-1", endpoint_url=ENDPOINT, aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )  # fmt: skip

    def capture(request: Any, **_: Any) -> None:
        raise _Captured(request)

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Captured) as captured:
        getattr(client, operation)(**params)
    request = captured.value.request
    url = urlsplit(request.url)
    body = request.body or b""
    if hasattr(body, "read"):
        body = body.read()
    headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
    scope = headers["authorization"].split("Credential=", 1)[1].split(",", 1)[0].split("/")
    return HttpRequest(
        method=request.method, host=url.netloc, path=url.path, query=url.query, headers=headers,
        body=body if isinstance(body, bytes) else body.encode(), service=scope[3], region=scope[2],
    )  # fmt: skip


def accesses(service: str, operation: str, **params: Any) -> list[tuple[str, str]]:
    call = describe(sent(service, operation, **params), ACCOUNT)
    return [(a.action, a.resource) for a in call.accesses]


def test_dynamodb_items_address_the_table_and_a_query_on_an_index_the_index() -> None:
    key = {"taskId": {"S": "t1"}}
    assert accesses("dynamodb", "get_item", TableName="Tasks", Key=key) == [("dynamodb:GetItem", TABLE)]
    assert accesses("dynamodb", "update_item", TableName=TABLE, Key=key) == [("dynamodb:UpdateItem", TABLE)]
    query = {"KeyConditionExpression": "s = :s", "ExpressionAttributeValues": {":s": {"S": "QUEUED"}}}
    assert accesses("dynamodb", "query", TableName="Tasks", IndexName="pendingShard-createdAt", **query) == [
        ("dynamodb:Query", f"{TABLE}/index/pendingShard-createdAt")
    ]
    assert accesses("dynamodb", "query", TableName="Tasks", **query) == [("dynamodb:Query", TABLE)]


def test_a_transaction_asks_for_each_item_action_on_each_table() -> None:
    items = [
        {"Put": {"TableName": "Tasks", "Item": {"taskId": {"S": "a"}}}},
        {
            "ConditionCheck": {
                "TableName": "Other",
                "Key": {"k": {"S": "b"}},
                "ConditionExpression": "attribute_exists(k)",
            }
        },
    ]
    assert accesses("dynamodb", "transact_write_items", TransactItems=items) == [
        ("dynamodb:PutItem", TABLE),
        ("dynamodb:ConditionCheckItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Other"),
    ]


def test_stream_reads_address_the_stream_and_get_records_the_iterators_stream() -> None:
    stream = f"{TABLE}/stream/2026-12-01T00:00:00.000"
    assert accesses("dynamodbstreams", "describe_stream", StreamArn=stream) == [("dynamodb:DescribeStream", stream)]
    assert accesses("dynamodbstreams", "get_records", ShardIterator=f"{stream}|1|abc") == [
        ("dynamodb:GetRecords", stream)
    ]
    assert accesses("dynamodbstreams", "list_streams") == [("dynamodb:ListStreams", "*")]


def test_sqs_addresses_the_queue_named_by_url_or_name() -> None:
    queue = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq"
    assert accesses("sqs", "send_message", QueueUrl=f"{ENDPOINT}/{ACCOUNT}/dlq", MessageBody="{}") == [
        ("sqs:SendMessage", queue)
    ]
    assert accesses("sqs", "get_queue_url", QueueName="dlq") == [("sqs:GetQueueUrl", queue)]


def test_step_functions_start_addresses_the_machine_and_describe_stop_the_execution() -> None:
    assert accesses("stepfunctions", "start_execution", stateMachineArn=MACHINE, name="n") == [
        ("states:StartExecution", MACHINE)
    ]
    assert accesses("stepfunctions", "describe_execution", executionArn=EXECUTION) == [
        ("states:DescribeExecution", EXECUTION)
    ]
    assert accesses("stepfunctions", "stop_execution", executionArn=EXECUTION) == [("states:StopExecution", EXECUTION)]


def test_put_events_addresses_each_entrys_bus() -> None:
    entries = [
        {"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": "tasks"},
        {"Source": "s", "DetailType": "d", "Detail": "{}"},
    ]
    assert accesses("events", "put_events", Entries=entries) == [
        ("events:PutEvents", f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/tasks"),
        ("events:PutEvents", f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"),
    ]


def test_lambda_invoke_is_invoke_function_on_the_function_and_its_qualifier() -> None:
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:validate"
    assert accesses("lambda", "invoke", FunctionName="validate") == [("lambda:InvokeFunction", function)]
    assert accesses("lambda", "invoke", FunctionName=function, Qualifier="live") == [
        ("lambda:InvokeFunction", f"{function}:live")
    ]
    assert accesses("lambda", "invoke", FunctionName=f"{function}:3") == [("lambda:InvokeFunction", f"{function}:3")]


def test_s3_object_and_bucket_operations() -> None:
    bucket = "arn:aws:s3:::results"
    assert accesses("s3", "get_object", Bucket="results", Key="tasks/t1/result.json") == [
        ("s3:GetObject", f"{bucket}/tasks/t1/result.json")
    ]
    assert accesses("s3", "head_object", Bucket="results", Key="tasks/t1/input.json") == [
        ("s3:GetObject", f"{bucket}/tasks/t1/input.json")
    ]
    assert accesses("s3", "put_object", Bucket="results", Key="tasks/a b/r.json", Body=b"{}") == [
        ("s3:PutObject", f"{bucket}/tasks/a b/r.json")
    ]
    assert accesses("s3", "copy_object", Bucket="results", Key="tasks/b", CopySource="results/users/u/a") == [
        ("s3:GetObject", f"{bucket}/users/u/a"),
        ("s3:PutObject", f"{bucket}/tasks/b"),
    ]
    call = describe(sent("s3", "list_objects_v2", Bucket="results", Prefix="diagnostics/"), ACCOUNT)
    assert call.accesses == (Access("s3:ListBucket", bucket),)
    assert call.context["s3:prefix"] == "diagnostics/"
    assert "s3:prefix" not in describe(sent("s3", "list_objects_v2", Bucket="results"), ACCOUNT).context


def test_sns_publish_addresses_the_topic() -> None:
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:notifications"
    assert accesses("sns", "publish", TopicArn=topic, Message="m") == [("sns:Publish", topic)]


def test_a_request_outside_the_mapping_is_refused_not_guessed() -> None:
    with pytest.raises(Unmapped):
        describe(sent("lambda", "list_functions"), ACCOUNT)


def test_a_start_through_an_alias_or_version_is_authorized_on_the_machine_with_its_qualifier() -> None:
    # "Authorization for versions and aliases in Step Functions workflows": Step Functions authorizes a version or
    # an alias on the state machine's ARN; the qualifier is the condition key states:StateMachineQualifier.
    from taskrail.local.iam.evaluate import Policy, Principal, Request, evaluate

    through_alias = describe(sent("stepfunctions", "start_execution", stateMachineArn=f"{MACHINE}:live"), ACCOUNT)
    through_version = describe(sent("stepfunctions", "start_execution", stateMachineArn=f"{MACHINE}:3"), ACCOUNT)
    unqualified = describe(sent("stepfunctions", "start_execution", stateMachineArn=MACHINE), ACCOUNT)
    assert [(a.action, a.resource) for a in through_alias.accesses] == [("states:StartExecution", MACHINE)]
    assert through_alias.context == {"states:StateMachineQualifier": "live"}
    assert through_version.context == {"states:StateMachineQualifier": "3"}
    assert unqualified.context == {}

    # the pipe's grant (infra/constructs/workflow.py allow_start_through_alias): the alias, nothing else
    grant = Policy("StartPipeRolePolicy", {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "states:StartExecution", "Resource": MACHINE,
        "Condition": {"StringEquals": {"states:StateMachineQualifier": "live"}},
    }]})  # fmt: skip
    pipe = Principal(
        f"arn:aws:sts::{ACCOUNT}:assumed-role/pipe/s", ACCOUNT, role_arn=f"arn:aws:iam::{ACCOUNT}:role/pipe"
    )

    def allowed(call: Any) -> bool:
        return evaluate(Request(pipe, "states:StartExecution", MACHINE, dict(call.context)), [grant], []).allowed

    assert allowed(through_alias)
    assert not allowed(unqualified) and not allowed(through_version)


QUEUE_URL = f"http://127.0.0.1:4566/{ACCOUNT}/dlq"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:outcomes"


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        # "Amazon SQS batch actions": permissions for SendMessage, DeleteMessage, ChangeMessageVisibility are those
        # of their batch versions; there is no sqs:SendMessageBatch to grant
        ("sqs", "send_message_batch", {"QueueUrl": QUEUE_URL, "Entries": [{"Id": "1", "MessageBody": "m"}]},
         [("sqs:SendMessage", QUEUE)]),
        ("sqs", "delete_message_batch", {"QueueUrl": QUEUE_URL, "Entries": [{"Id": "1", "ReceiptHandle": "r"}]},
         [("sqs:DeleteMessage", QUEUE)]),
        ("sqs", "change_message_visibility_batch",
         {"QueueUrl": QUEUE_URL, "Entries": [{"Id": "1", "ReceiptHandle": "r", "VisibilityTimeout": 0}]},
         [("sqs:ChangeMessageVisibility", QUEUE)]),
        # "Amazon SNS API permissions": sns:Publish "Grants permission to both publish and publish batch"
        ("sns", "publish_batch", {"TopicArn": TOPIC, "PublishBatchRequestEntries": [{"Id": "1", "Message": "m"}]},
         [("sns:Publish", TOPIC)]),
        # the Service Authorization Reference: DescribeStateMachineForExecution on the execution resource
        ("stepfunctions", "describe_state_machine_for_execution", {"executionArn": EXECUTION},
         [("states:DescribeStateMachineForExecution", EXECUTION)]),
    ],
    ids=["sqs-send-batch", "sqs-delete-batch", "sqs-visibility-batch", "sns-publish-batch", "sfn-machine-for-exec"],
)  # fmt: skip
def test_batch_operations_ask_for_their_single_message_action_and_an_execution_lookup_for_the_execution(
    service: str, operation: str, params: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert accesses(service, operation, **params) == expected
