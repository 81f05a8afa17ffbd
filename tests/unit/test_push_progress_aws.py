"""push_progress's boto3 adapters against botocore's Stubber (no network): the management API's GoneException is
ConnectionGone, every other refusal PostFailed; the owner index is read page by page; the client's budget."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from push_progress.aws import DynamoDBConnections, ManagementApiPoster
from push_progress.models import Connection
from push_progress.ports import ConnectionGone, PostFailed

ENDPOINT = "https://abc123.execute-api.us-east-1.amazonaws.com/live"


@pytest.fixture
def management():
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("GoneException", 410, ConnectionGone),
        ("LimitExceededException", 429, PostFailed),
        ("ForbiddenException", 403, PostFailed),
    ],
)
def test_a_refused_post_is_gone_only_for_gone_exception(management, code, status, raised):
    client, stubber = management
    stubber.add_client_error("post_to_connection", service_error_code=code, http_status_code=status)
    poster = ManagementApiPoster(ENDPOINT, timeout_seconds=1.0, management_client=client)
    with pytest.raises(raised):
        poster.post("conn-1", b"{}")


def test_a_post_sends_the_message_to_the_connection(management):
    client, stubber = management
    stubber.add_response("post_to_connection", {}, {"ConnectionId": "conn-1", "Data": b'{"type":"progress"}'})
    ManagementApiPoster(ENDPOINT, timeout_seconds=1.0, management_client=client).post("conn-1", b'{"type":"progress"}')
    stubber.assert_no_pending_responses()


def test_the_real_client_has_a_short_budget_and_no_retry(monkeypatch):
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    poster = ManagementApiPoster(ENDPOINT, timeout_seconds=1.5)
    config = poster._management.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1.5, 1.5)
    assert config.retries["total_max_attempts"] == 1
    assert poster._management.meta.endpoint_url == ENDPOINT


def test_the_owner_index_is_read_page_by_page():
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    request = {
        "TableName": "connections",
        "IndexName": "owner",
        "KeyConditionExpression": "ownerId = :owner",
        "ExpressionAttributeValues": {":owner": {"S": "AROAALICE"}},
        "ProjectionExpression": "connectionId, taskId",
    }
    last = {"ownerId": {"S": "AROAALICE"}, "connectionId": {"S": "a"}}
    with Stubber(client) as stubber:
        stubber.add_response(
            "query",
            {"Items": [{"connectionId": {"S": "a"}, "taskId": {"S": "t-1"}}], "LastEvaluatedKey": last},
            request,
        )
        stubber.add_response("query", {"Items": [{"connectionId": {"S": "b"}}]}, {**request, "ExclusiveStartKey": last})
        found = DynamoDBConnections("connections", "owner", dynamodb_client=client).of_owner("AROAALICE")
    assert found == [Connection(connection_id="a", task_id="t-1"), Connection(connection_id="b", task_id=None)]
