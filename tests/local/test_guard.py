"""The local guard: loopback Host names, no browsers, signed requests only, no /moto-api on the AWS endpoint.

AWS evidence for the answers (cited in taskrail/local/guard.py): DynamoDB answers authentication errors with
HTTP 400 (MissingAuthenticationTokenException, UnrecognizedClientException, IncompleteSignatureException,
"Error handling with DynamoDB"); the query-protocol services' "Common Errors" are MissingAuthenticationToken
(403), InvalidClientTokenId (403), IncompleteSignature (400); S3's "Error responses" list AccessDenied,
InvalidAccessKeyId and SignatureDoesNotMatch as 403.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from moto.stepfunctions.parser.asl.utils import boto_client as sfn_boto_client

from taskrail.local import guard
from taskrail.local.region import REGION
from taskrail.local.services import server
from taskrail.local.stack import LOCAL_CREDENTIALS
from taskrail.local.users import ALICE, CI_ROLE, MOTO_INTERPRETER, STACK_SERVICE, known_credentials

PORT = 4567


# -- the Host and browser checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"LocalHost:{PORT}", f"[::1]:{PORT}", f"app.localhost:{PORT}"]
)
def test_a_loopback_name_with_the_listeners_port_passes(host: str) -> None:
    assert guard.host_refusal(host, PORT) is None


@pytest.mark.parametrize(
    "host",
    [
        None,
        "",
        f"evil.example:{PORT}",
        "127.0.0.1:4568",  # another listener's port
        "127.0.0.1",  # no port means 80
        f"localhost.evil.example:{PORT}",
        f"127.0.0.1.nip.io:{PORT}",
        f".localhost:{PORT}",
        f"[::1:{PORT}",
        f"127.0.0.1:{PORT}:1",
        f"127.0.0.1:{PORT}x",
        f"0.0.0.0:{PORT}",
    ],
)
def test_any_other_host_is_refused(host: str | None) -> None:
    refused = guard.host_refusal(host, PORT)
    assert refused is not None and refused.reason == "host"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Origin", "http://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
        ("Sec-Fetch-Site", "same-site"),  # a page on another loopback port is same-site
        ("Sec-Fetch-Mode", "no-cors"),
    ],
)
def test_a_browser_header_is_refused_where_no_browser_belongs(name: str, value: str) -> None:
    headers = {"host": f"127.0.0.1:{PORT}", name.lower(): value}
    refused = guard.refusal(lambda n: headers.get(n.lower()), PORT, browsers=False)
    assert refused is not None and refused.reason == "browser" and name in refused.message
    assert guard.refusal(lambda n: headers.get(n.lower()), PORT, browsers=True) is None


def test_the_interpreters_credentials_are_the_ones_the_registry_accepts() -> None:
    # moto's Step Functions interpreter signs with constants of its own; if moto changes them, every workflow
    # service call would be refused: fail here first.
    client = sfn_boto_client.boto_client_for(REGION, "sqs")
    credentials = client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == (
        MOTO_INTERPRETER.access_key_id,
        MOTO_INTERPRETER.secret_access_key,
    )
    assert known_credentials()[MOTO_INTERPRETER.access_key_id] == MOTO_INTERPRETER


# -- the AWS endpoint, over HTTP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with server.threaded_server() as url:
        yield url


def client(service: str, url: str, **credentials: Any) -> Any:
    credentials = credentials or LOCAL_CREDENTIALS
    config = Config(retries={"max_attempts": 1})
    return boto3.client(service, endpoint_url=url, region_name=REGION, config=config, **credentials)


def raw(url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    """A curl-style request: exactly these headers (plus Host unless given), no SDK."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = dict(headers or {})
    skip_host = any(name.lower() == "host" for name in headers)
    connection.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
    for name, value in headers.items():
        connection.putheader(name, value)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    response.text = response.read().decode()
    connection.close()
    print(f"{method} {path} {headers} -> {response.status} {response.text}")
    return response


def signed(url: str, service: str, target: str | None, body: bytes, credentials: Credentials) -> dict[str, str]:
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    if target:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=f"{url}/", data=body, headers=headers)
    SigV4Auth(credentials, service, REGION).add_auth(request)
    return dict(request.headers.items())


@pytest.fixture(scope="module")
def data(endpoint: str) -> dict[str, str]:
    """A table with an item and a queue with a message: what a refused request must leave as it is."""
    dynamodb = client("dynamodb", endpoint)
    dynamodb.create_table(
        TableName="guarded",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.put_item(TableName="guarded", Item={"k": {"S": "kept"}})
    queue = client("sqs", endpoint).create_queue(QueueName="guarded")["QueueUrl"]
    client("sqs", endpoint).send_message(QueueUrl=queue, MessageBody="kept")
    return {"queue": queue}


def assert_data_unchanged(endpoint: str, data: dict[str, str]) -> None:
    item = client("dynamodb", endpoint).get_item(TableName="guarded", Key={"k": {"S": "kept"}})
    assert item["Item"] == {"k": {"S": "kept"}}
    attributes = client("sqs", endpoint).get_queue_attributes(
        QueueUrl=data["queue"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "1"


def test_the_sdk_with_the_local_credentials_works_for_every_service_the_stack_uses(endpoint: str) -> None:
    s3 = client("s3", endpoint)
    s3.create_bucket(Bucket="guarded-bucket")
    s3.put_object(Bucket="guarded-bucket", Key="a key/é.json", Body=b"{}")
    assert s3.get_object(Bucket="guarded-bucket", Key="a key/é.json")["Body"].read() == b"{}"
    topic = client("sns", endpoint).create_topic(Name="guarded")["TopicArn"]
    assert client("sns", endpoint).get_topic_attributes(TopicArn=topic)["Attributes"]["TopicArn"] == topic
    assert "Functions" in client("lambda", endpoint).list_functions()
    assert "stateMachines" in client("stepfunctions", endpoint).list_state_machines()
    assert "Pipes" in client("pipes", endpoint).list_pipes()
    alice = {"aws_access_key_id": ALICE.access_key_id, "aws_secret_access_key": ALICE.secret_access_key}
    assert "TableNames" in client("dynamodb", endpoint, **alice).list_tables()


def test_a_lambda_workers_session_token_is_accepted_and_another_is_not(endpoint: str) -> None:
    worker = {
        "aws_access_key_id": STACK_SERVICE.access_key_id,
        "aws_secret_access_key": STACK_SERVICE.secret_access_key,
    }
    assert (
        "TableNames"
        in client("dynamodb", endpoint, aws_session_token=STACK_SERVICE.session_token, **worker).list_tables()
    )
    with pytest.raises(ClientError) as refused:
        client("dynamodb", endpoint, aws_session_token="forged", **worker).list_tables()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"


def test_a_foreign_host_is_refused_and_a_reset_through_it_wipes_nothing(endpoint: str, data: dict[str, str]) -> None:
    response = raw(endpoint, "POST", "/moto-api/reset", headers={"Host": "evil.example"})
    assert response.status == 403
    assert "<Code>AccessDenied</Code>" in response.text and "is not a loopback name" in response.text
    # a DNS-rebinding page signed its request with the well-known local keys: still the wrong Host
    body = b"{}"
    headers = signed(endpoint, "dynamodb", "DynamoDB_20120810.ListTables", body, Credentials("testing", "testing"))
    response = raw(
        endpoint, "POST", "/", body, headers | {"Host": "rebind.evil.example:" + str(urlsplit(endpoint).port)}
    )
    assert response.status == 400
    assert json.loads(response.text)["__type"].endswith("#AccessDeniedException")
    assert_data_unchanged(endpoint, data)


@pytest.mark.parametrize(
    "path", ["/moto-api/reset", "/moto-api/data.json", "/moto-api/config", "/moto-api/", "/moto-api/time"]
)
def test_the_moto_management_api_is_not_served_even_to_a_signed_caller(
    endpoint: str, data: dict[str, str], path: str
) -> None:
    unsigned = raw(endpoint, "POST", path)
    assert unsigned.status == 403 and "<Code>AccessDenied</Code>" in unsigned.text
    request = AWSRequest(method="POST", url=f"{endpoint}{path}", data=b"")
    SigV4Auth(Credentials("testing", "testing"), "s3", REGION).add_auth(request)
    with_key = raw(endpoint, "POST", path, b"", dict(request.headers.items()))
    assert with_key.status == 403 and "taskrail local reset" in with_key.text
    assert_data_unchanged(endpoint, data)


def test_a_cors_preflight_gets_no_grant(endpoint: str) -> None:
    response = raw(
        endpoint,
        "OPTIONS",
        "/",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status == 403
    assert not [name for name, _ in response.getheaders() if name.lower().startswith("access-control-")]


def test_a_signed_request_from_a_browser_is_refused(endpoint: str, data: dict[str, str]) -> None:
    body = b'{"TableName": "guarded"}'
    headers = signed(endpoint, "dynamodb", "DynamoDB_20120810.DeleteTable", body, Credentials("testing", "testing"))
    for browser in ({"Origin": "http://127.0.0.1:9999"}, {"Sec-Fetch-Site": "cross-site"}):
        response = raw(endpoint, "POST", "/", body, headers | browser)
        assert response.status == 400, response.text
        assert json.loads(response.text)["__type"] == "com.amazon.coral.service#AccessDeniedException"
        assert "answers no browser" in json.loads(response.text)["message"]
    assert_data_unchanged(endpoint, data)


def test_an_unsigned_request_gets_the_services_missing_token_error(endpoint: str, data: dict[str, str]) -> None:
    dynamodb = raw(
        endpoint,
        "POST",
        "/",
        b'{"TableName": "guarded"}',
        {"X-Amz-Target": "DynamoDB_20120810.DeleteTable", "Content-Type": "application/x-amz-json-1.0"},
    )
    assert dynamodb.status == 400
    assert json.loads(dynamodb.text)["__type"].endswith("#MissingAuthenticationTokenException")
    sns = raw(
        endpoint,
        "POST",
        "/",
        b"Action=ListTopics&Version=2010-03-31",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert sns.status == 403 and "<Code>MissingAuthenticationToken</Code>" in sns.text
    s3 = raw(endpoint, "GET", "/guarded-bucket/a%20key/%C3%A9.json")
    assert s3.status == 403 and "<Code>AccessDenied</Code><Message>Access Denied</Message>" in s3.text
    assert_data_unchanged(endpoint, data)


REFUSABLE_CALLS = {
    "dynamodb": lambda c: c.list_tables(),
    "sns": lambda c: c.list_topics(),
    "s3": lambda c: c.list_buckets(),
}


def assert_each_service_refuses(endpoint: str, credentials: dict[str, str], expected: dict[str, str]) -> None:
    for service, call in REFUSABLE_CALLS.items():
        with pytest.raises(ClientError) as refused:
            call(client(service, endpoint, **credentials))
        print(service, refused.value.response["Error"], refused.value.response["ResponseMetadata"]["HTTPStatusCode"])
        assert refused.value.response["Error"]["Code"] == expected[service]


def test_an_unknown_key_gets_the_services_invalid_key_error(endpoint: str) -> None:
    stranger = {"aws_access_key_id": "AKIAUNKNOWN000000000", "aws_secret_access_key": "anything"}
    expected = {"dynamodb": "UnrecognizedClientException", "sns": "InvalidClientTokenId", "s3": "InvalidAccessKeyId"}
    assert_each_service_refuses(endpoint, stranger, expected)


def test_a_wrong_secret_gets_the_services_signature_error(endpoint: str) -> None:
    forged = {"aws_access_key_id": STACK_SERVICE.access_key_id, "aws_secret_access_key": "not-the-secret"}
    expected = {"dynamodb": "InvalidSignatureException", "sns": "SignatureDoesNotMatch", "s3": "SignatureDoesNotMatch"}
    assert_each_service_refuses(endpoint, forged, expected)


def test_a_body_changed_after_signing_is_refused(endpoint: str, data: dict[str, str]) -> None:
    headers = signed(endpoint, "dynamodb", "DynamoDB_20120810.ListTables", b"{}", Credentials("testing", "testing"))
    response = raw(
        endpoint, "POST", "/", b'{"TableName": "guarded"}', headers | {"X-Amz-Target": "DynamoDB_20120810.DeleteTable"}
    )
    assert response.status == 400
    assert json.loads(response.text)["__type"].endswith("#InvalidSignatureException")
    assert_data_unchanged(endpoint, data)


def presigned(endpoint: str, method: str = "get_object", key: str = "k", expires: int = 60) -> str:
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, config=Config(signature_version="s3v4"), **LOCAL_CREDENTIALS
    )
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="k", Body=b"the document")
    url = s3.generate_presigned_url(method, Params={"Bucket": "presigned", "Key": key}, ExpiresIn=expires)
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_a_presigned_s3_get_downloads_the_object_without_credentials(endpoint: str) -> None:
    # AWS: "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)",
    # https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html (the result endpoint's links)
    response = raw(endpoint, "GET", presigned(endpoint))
    assert (response.status, response.text) == (200, "the document")


def test_a_presigned_url_changed_after_signing_is_refused(endpoint: str) -> None:
    target = presigned(endpoint)
    for tampered in (
        target.replace("/presigned/k?", "/presigned/other?"),
        target.replace("X-Amz-Expires=60", "X-Amz-Expires=600"),
    ):
        response = raw(endpoint, "GET", tampered)
        assert response.status == 403 and "<Code>SignatureDoesNotMatch</Code>" in response.text


def test_a_presigned_url_is_refused_for_anything_but_get_and_head_and_from_a_browser(endpoint: str) -> None:
    put = raw(endpoint, "PUT", presigned(endpoint, "put_object"), b"overwritten")
    from_a_page = raw(endpoint, "GET", presigned(endpoint), headers={"Sec-Fetch-Site": "cross-site"})

    assert put.status == 403 and "<Code>AccessDenied</Code>" in put.text
    assert from_a_page.status == 403  # the local keys are public: a page could forge a link
    assert raw(endpoint, "GET", presigned(endpoint)).text == "the document"


def test_an_accepted_answer_carries_no_cors_grant(endpoint: str) -> None:
    body = b"{}"
    headers = signed(endpoint, "dynamodb", "DynamoDB_20120810.ListTables", body, Credentials("testing", "testing"))
    response = raw(endpoint, "POST", "/", body, headers)
    assert response.status == 200 and "TableNames" in response.text
    assert not [name for name, _ in response.getheaders() if name.lower().startswith("access-control-")]


def test_a_local_role_session_signs_like_a_user_and_a_forged_session_key_does_not(endpoint: str) -> None:
    session = CI_ROLE.session("guard-test")
    signed_in = {
        "aws_access_key_id": session.access_key_id,
        "aws_secret_access_key": session.secret_access_key,
        "aws_session_token": session.session_token,
    }
    assert "TableNames" in client("dynamodb", endpoint, **signed_in).list_tables()
    with pytest.raises(ClientError) as refused:
        client("dynamodb", endpoint, **(signed_in | {"aws_secret_access_key": "guessed"})).list_tables()
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    with pytest.raises(ClientError) as refused:
        client("dynamodb", endpoint, **(signed_in | {"aws_session_token": "guessed"})).list_tables()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
