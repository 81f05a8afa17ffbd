"""The local API Gateway over HTTP: the synthesized template's API, SigV4, validation, VTL, DynamoDB in moto.

One moto server per module holds the template's resources, provisioned from the template as ``local up``
does, and one LocalApiGateway serves the template's API on it. Clients sign with botocore's SigV4, as the
taskrail client and the AWS SDKs do.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from task_common.aws import DynamoDBTaskStore
from task_common.contract import PENDING_INDEX, PENDING_SHARD_ATTRIBUTE, TIMESTAMP_PATTERN
from taskrail.local.apigw import MAX_PAYLOAD_BYTES, GatewayRequest, LocalApiGateway
from taskrail.local.users import ALICE, BOB, LocalUser
from tests.listening import non_loopback_listeners
from tests.local.local_api import provisioned_moto

REGION = "us-east-1"
FIXTURES = Path(__file__).parent / "fixtures" / "apigw"
SESSION = requests.Session()

HOSTILE = [
    '"',
    "'",
    'it\'s "quoted"',
    "\\",
    "x\\",
    '\\"',
    "a\nb\r\nc\td",
    "".join(map(chr, range(32))) + "\x7f",
    "\x85\u2028\u2029",
    "😀 👨\u200d👩\u200d👧 日本語 café",
    "#set($x=1)$x",
    "$util.escapeJavaScript('x')",
    "${x}",
    '"},"S":{"',
    '{"S": "x"}',
    "$context.identity.user",
    "$input.json('$')",
    "#if(true)yes#end ## comment",
    "%%TASK_FIELDS%%",
    "${TasksTableName}",
    "</script><!--",
]
# What an HTTP header can carry (no CR/LF, Latin-1), for Idempotency-Key.
HOSTILE_HEADERS = [
    '"',
    "'",
    "\\",
    "x\\",
    "a\tb",
    "#set($x=1)$x",
    "$util.escapeJavaScript('x')",
    "${x}",
    '"},"S":{"',
    '{"S": "x"}',
]


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def signed_request(
    user: LocalUser,
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    secret: str | None = None,
    when: dt.datetime | None = None,
) -> requests.Response:
    """Send a request SigV4-signed for execute-api, as the taskrail client and AWS SDKs do."""
    data = json.dumps(body) if isinstance(body, dict | list) else body
    prepared = requests.Request(method, url, data=data, headers=headers or {}).prepare()
    aws_request = AWSRequest(method=method, url=prepared.url, data=prepared.body, headers=dict(prepared.headers))
    signer = SigV4Auth(Credentials(user.access_key_id, secret or user.secret_access_key), "execute-api", REGION)
    if when is None:
        signer.add_auth(aws_request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when.replace(tzinfo=None)):
            signer.add_auth(aws_request)
    prepared.headers.update(dict(aws_request.headers.items()))
    return SESSION.send(prepared, timeout=30)


@dataclass
class Api:
    gateway: LocalApiGateway
    ddb: Any
    table: str

    @property
    def url(self) -> str:
        return self.gateway.url

    def call(
        self, user: LocalUser, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        response = signed_request(user, method, self.url + path, body, all_headers)
        assert response.status_code < 500, f"{method} {path} → {response.status_code} {response.text}"
        assert response.headers["Content-Type"] == "application/json"
        response.json()  # every answer is JSON
        return response

    def submit(
        self, user: LocalUser = ALICE, params: Any = None, *, task_type: str = "text.stats", key: str | None = None
    ) -> requests.Response:
        headers = {"Idempotency-Key": key} if key is not None else None
        return self.call(user, "POST", "/tasks", {"type": task_type, "params": params or {}}, headers)

    def item(self, task_id: str) -> dict[str, Any] | None:
        found = self.ddb.get_item(TableName=self.table, Key={"taskId": {"S": task_id}}, ConsistentRead=True)
        return found.get("Item")


@pytest.fixture(scope="module")
def api(template: dict[str, Any], template_path: Path) -> Iterator[Api]:
    with (
        provisioned_moto(template, template_path) as moto,
        LocalApiGateway(template, moto.resolve, moto.url) as gateway,
    ):
        yield Api(gateway, moto.client("dynamodb"), moto.resources.ref("TasksTable"))


def message(response: requests.Response) -> str:
    return str(response.json()["message"])


# --------------------------------------------------------------------------------------------------
# the API comes from the template
# --------------------------------------------------------------------------------------------------


def test_routes_and_stage_come_from_the_synthesized_template(api: Api) -> None:
    # Given the synthesized template / When the gateway reads it / Then its seven routes are served under /v1
    assert api.gateway.routes() == [
        ("DELETE", "/tasks/{taskId}"),
        ("GET", "/me"),
        ("GET", "/tasks"),
        ("GET", "/tasks/{taskId}"),
        ("GET", "/tasks/{taskId}/result"),
        ("POST", "/tasks"),
        ("PUT", "/me/profile"),
    ]
    assert api.url.endswith("/v1")
    actions = {(m.http_method, m.resource_path): m.integration.action for m in api.gateway.api.methods}
    assert actions[("POST", "/tasks")] == "UpdateItem"
    assert actions[("GET", "/tasks")] == "Query"
    post = next(m for m in api.gateway.api.methods if m.http_method == "POST")
    assert api.table in post.integration.request_templates["application/json"]  # the token is resolved
    assert post.validate_body and post.models["application/json"]["required"] == ["type", "params"]


def test_the_result_route_is_a_lambda_custom_integration_selected_by_the_functions_error(api: Api) -> None:
    # AWS: a Lambda custom integration's SelectionPattern is matched against the function error's errorMessage,
    # and a function that returned normally gets the default response ("Handle Lambda errors in API Gateway",
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/handle-errors-in-lambda-integration.html)
    method, params = api.gateway.api.match("GET", "/tasks/t-1/result")
    integration = method.integration
    gateway = api.gateway

    assert params == {"taskId": "t-1"}
    assert (integration.service, integration.action) == ("lambda", "Invoke")
    assert integration.path.startswith("/2015-03-31/functions/") and integration.path.endswith("/invocations")
    assert gateway._select(integration, 200, None).status_code == "200"
    assert gateway._select(integration, 200, "KeyError: 'taskId'").status_code == "503"
    assert gateway._select(integration, 200, "").status_code == "200"  # ".+" needs a message, as on AWS


def test_nothing_listens_on_a_non_loopback_address(api: Api) -> None:
    # Given a started gateway / Then its socket is bound to 127.0.0.1, and other hosts are refused outright
    host, port = api.gateway.bound_address
    assert host == "127.0.0.1"
    assert api.url.startswith(f"http://127.0.0.1:{port}/")
    with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
        LocalApiGateway({}, lambda v: v, "http://127.0.0.1:1", host="0.0.0.0")
    # and the OS agrees: the listening socket's address is loopback (0.0.0.0 would accept other hosts)
    assert non_loopback_listeners({port}) == []


# --------------------------------------------------------------------------------------------------
# submit, read, list, cancel
# --------------------------------------------------------------------------------------------------


def test_submit_stores_the_task_first_and_answers_202_queued(api: Api) -> None:
    # Given alice's params / When she POSTs /tasks
    params = {"text": "hello world", "n": 3, "nested": {"list": [1, 2.5, None, True]}}
    response = api.submit(ALICE, params, task_type="text.stats")
    # Then 202 QUEUED with a task id, and the item is already in the table
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "QUEUED" and body["taskId"]
    item = api.item(body["taskId"])
    assert item is not None
    assert item["userId"] == {"S": ALICE.principal_id}
    assert item["type"] == {"S": "text.stats"}
    assert json.loads(item["params"]["S"]) == params
    assert item["status"] == {"S": "QUEUED"}
    assert int(item["createdAt"]["N"]) > 1_700_000_000_000
    assert "idempotencyKey" not in item


def test_the_same_idempotency_key_twice_returns_the_same_task(api: Api) -> None:
    # Given alice submitted with an Idempotency-Key
    key = f"order-{uuid.uuid4()}"
    first = api.submit(ALICE, {"a": 1}, key=key)
    assert first.status_code == 202, first.text
    # When she submits again with the same key
    second = api.submit(ALICE, {"a": 1}, key=key)
    # Then the same task comes back, 202 again, and no second item exists
    assert second.status_code == 202, second.text
    assert second.json()["taskId"] == first.json()["taskId"]
    assert second.json()["status"] == "QUEUED"
    items = api.ddb.scan(
        TableName=api.table,
        FilterExpression="idempotencyKey = :k",
        ExpressionAttributeValues={":k": {"S": key}},
    )["Items"]
    assert len(items) == 1


def test_the_same_key_and_body_again_returns_the_stored_task_as_it_is_now(api: Api) -> None:
    # Given alice's keyed task is still queued
    key = f"order-{uuid.uuid4()}"
    task_id = api.submit(ALICE, {"text": "x"}, key=key).json()["taskId"]
    stored = api.item(task_id)
    # When she submits the same body with the same key
    again = api.submit(ALICE, {"text": "x"}, key=key)
    # Then the stored task comes back, and the retry changed nothing of it
    assert (again.status_code, again.json()) == (202, {"taskId": task_id, "status": "QUEUED", "duplicate": True})
    assert api.item(task_id) == stored


def test_a_same_body_retry_of_a_finished_task_is_202_and_the_reconciler_takes_it_out_of_the_pending_index(
    api: Api,
) -> None:
    # Given alice's keyed task has finished: its terminal write left the pending index (REMOVE pendingShard)
    key = f"order-{uuid.uuid4()}"
    task_id = api.submit(ALICE, {"text": "x"}, key=key).json()["taskId"]
    api.ddb.update_item(
        TableName=api.table,
        Key={"taskId": {"S": task_id}},
        UpdateExpression="SET #s = :s, progress = :p REMOVE #shard",
        ExpressionAttributeNames={"#s": "status", "#shard": PENDING_SHARD_ATTRIBUTE},
        ExpressionAttributeValues={":s": {"S": "SUCCEEDED"}, ":p": {"N": "100"}},
    )
    stored = api.item(task_id)
    assert stored is not None and PENDING_SHARD_ATTRIBUTE not in stored
    # When she submits the same body with the same key
    again = api.submit(ALICE, {"text": "x"}, key=key)
    # Then the stored task comes back as it is now; the retry re-added only the shard (if_not_exists cannot tell a
    # removed attribute from a new item's), and the reconciler's repair takes it out again, the task as it was
    assert (again.status_code, again.json()) == (202, {"taskId": task_id, "status": "SUCCEEDED", "duplicate": True})
    retried = api.item(task_id)
    assert retried is not None and set(retried) - set(stored) == {PENDING_SHARD_ATTRIBUTE}
    assert {name: value for name, value in retried.items() if name != PENDING_SHARD_ATTRIBUTE} == stored
    store = DynamoDBTaskStore(api.table, api.ddb, pending_index=PENDING_INDEX)
    found = store.finished_in_pending_index(limit=10)
    assert [t.task_id for t in found] == [task_id]
    assert store.leave_pending_index(found[0])
    assert api.item(task_id) == stored
    assert store.finished_in_pending_index(limit=10) == []


@pytest.mark.parametrize(
    ("task_type", "params"),
    [("text.stats", {"text": "y"}), ("csv.summary", {"text": "x"}), ("text.stats", {"text": "x", "top": 3})],
    ids=["other-params", "other-type", "one-more-param"],
)
def test_the_same_key_with_another_body_is_422_and_changes_nothing(api: Api, task_type: str, params: Any) -> None:
    # Given alice submitted text.stats {"text": "x"} with a key (IETF Idempotency-Key draft, Stripe: a key is
    # bound to its request; another payload under it is 422 Unprocessable Content)
    key = f"order-{uuid.uuid4()}"
    first = api.submit(ALICE, {"text": "x"}, key=key)
    task_id = first.json()["taskId"]
    stored = api.item(task_id)
    # When she reuses the key for another body
    reused = api.submit(ALICE, params, task_type=task_type, key=key)
    # Then 422 says what happened and what to do, and the stored task is untouched
    assert reused.status_code == 422, reused.text
    assert message(reused) == (
        f"this Idempotency-Key was already used for task {task_id} with a different type or params: send the same "
        "body to get that task back, or use a new key for a new task"
    )
    assert api.item(task_id) == stored


def test_the_same_key_from_another_user_is_another_task(api: Api) -> None:
    # Given alice and bob use the same Idempotency-Key
    alice = api.submit(ALICE, {"who": "alice"}, key="shared-key")
    bob = api.submit(BOB, {"who": "bob"}, key="shared-key")
    # Then each gets their own task
    assert alice.status_code == bob.status_code == 202
    assert alice.json()["taskId"] != bob.json()["taskId"]
    bob_item = api.item(bob.json()["taskId"])
    assert bob_item is not None and bob_item["userId"] == {"S": BOB.principal_id}


def test_get_returns_the_callers_task_with_params_as_an_object(api: Api) -> None:
    # Given a stored task
    params = {"text": "x", "deep": {"a": [1, {"b": None}]}}
    task_id = api.submit(ALICE, params, key="get-me").json()["taskId"]
    # When alice GETs it
    response = api.call(ALICE, "GET", f"/tasks/{task_id}")
    # Then 200 with its fields, params as an object
    assert response.status_code == 200, response.text
    task = response.json()
    assert task["taskId"] == task_id and task["type"] == "text.stats" and task["status"] == "QUEUED"
    assert task["params"] == params
    assert task["progress"] == 0 and task["attempt"] == 0 and re.fullmatch(TIMESTAMP_PATTERN, task["createdAt"])
    assert task["idempotencyKey"] == "get-me"


def test_another_users_task_and_a_missing_task_are_both_404(api: Api) -> None:
    task_id = api.submit(ALICE, {"secret": "alice's"}).json()["taskId"]
    # When bob GETs alice's task, or anyone GETs a task that does not exist / Then 404 for both
    stolen = api.call(BOB, "GET", f"/tasks/{task_id}")
    missing = api.call(ALICE, "GET", "/tasks/no-such-task")
    assert (stolen.status_code, stolen.json()) == (404, {"message": "task not found"})
    assert (missing.status_code, missing.json()) == (404, {"message": "task not found"})


def test_list_returns_only_the_callers_tasks_filtered_and_limited(api: Api) -> None:
    # Given a queued and a cancelled task of alice and a task of bob
    queued = api.submit(ALICE, {"n": 1}).json()["taskId"]
    cancelled = api.submit(ALICE, {"n": 2}).json()["taskId"]
    assert api.call(ALICE, "DELETE", f"/tasks/{cancelled}").status_code == 202
    bobs = api.submit(BOB, {"n": 3}).json()["taskId"]
    # When alice lists her tasks
    listed = api.call(ALICE, "GET", "/tasks")
    # Then only hers, newest first
    assert listed.status_code == 200, listed.text
    tasks = listed.json()["tasks"]
    assert listed.json()["count"] == len(tasks)
    ids = [t["taskId"] for t in tasks]
    assert queued in ids and cancelled in ids and bobs not in ids
    for task_id in ids:
        item = api.item(task_id)
        assert item is not None and item["userId"] == {"S": ALICE.principal_id}
    assert [t["createdAt"] for t in tasks] == sorted((t["createdAt"] for t in tasks), reverse=True)
    # And ?status= filters, ?limit= limits
    only_queued = api.call(ALICE, "GET", "/tasks?status=QUEUED").json()["tasks"]
    assert queued in {t["taskId"] for t in only_queued} and cancelled not in {t["taskId"] for t in only_queued}
    assert {t["status"] for t in only_queued} == {"QUEUED"}
    only_cancelled = api.call(ALICE, "GET", "/tasks?status=CANCELLED").json()["tasks"]
    assert cancelled in {t["taskId"] for t in only_cancelled}
    assert {t["status"] for t in only_cancelled} == {"CANCELLED"}
    one = api.call(ALICE, "GET", "/tasks?limit=1").json()
    assert one["count"] == 1 and len(one["tasks"]) == 1


def test_cancel_answers_202_and_marks_the_task_cancelled(api: Api) -> None:
    task_id = api.submit(ALICE, {"n": 1}).json()["taskId"]
    # When alice DELETEs her queued task
    response = api.call(ALICE, "DELETE", f"/tasks/{task_id}")
    # Then 202 CANCELLED, and the item says so
    assert (response.status_code, response.json()) == (202, {"taskId": task_id, "status": "CANCELLED"})
    item = api.item(task_id)
    assert item is not None and item["status"] == {"S": "CANCELLED"} and "cancelledAt" in item


def test_cancelling_another_users_task_is_404_and_leaves_it_alone(api: Api) -> None:
    task_id = api.submit(ALICE, {"n": 1}).json()["taskId"]
    response = api.call(BOB, "DELETE", f"/tasks/{task_id}")
    assert (response.status_code, response.json()) == (404, {"message": "task not found"})
    item = api.item(task_id)
    assert item is not None and item["status"] == {"S": "QUEUED"}
    missing = api.call(ALICE, "DELETE", "/tasks/no-such-task")
    assert (missing.status_code, missing.json()) == (404, {"message": "task not found"})


def test_cancelling_twice_is_409(api: Api) -> None:
    task_id = api.submit(ALICE, {"n": 1}).json()["taskId"]
    assert api.call(ALICE, "DELETE", f"/tasks/{task_id}").status_code == 202
    again = api.call(ALICE, "DELETE", f"/tasks/{task_id}")
    assert again.status_code == 409, again.text
    assert "already CANCELLED" in message(again)


# --------------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param({"params": {}}, 'object has missing required properties (["type"])', id="missing-type"),
        pytest.param({"type": "a"}, 'object has missing required properties (["params"])', id="missing-params"),
        pytest.param(
            {"type": "a", "params": {}, "extra": 1},
            'object instance has properties which are not allowed by the schema: ["extra"]',
            id="extra-property",
        ),
        pytest.param(
            {"type": "image.resize", "params": {}},
            'instance value ("image.resize") not found in enum (possible values: ["csv.summary",',
            id="unknown-type",
        ),
        pytest.param(
            {"type": "Bad Type!", "params": {}}, 'instance value ("Bad Type!") not found in enum', id="type-pattern"
        ),
        pytest.param(
            {"type": "text.stats\n", "params": {}},
            'instance value ("text.stats\\n") not found',
            id="type-trailing-newline",
        ),
        pytest.param({"type": "x" * 65, "params": {}}, "not found in enum", id="long"),
        pytest.param(
            {"type": "a", "params": "text"},
            'instance type (string) does not match any allowed primitive type (allowed: ["object"])',
            id="params-not-object",
        ),
        pytest.param([1, 2], "instance type (array)", id="not-an-object"),
    ],
)
def test_an_invalid_submission_is_400_saying_why(api: Api, body: Any, expected: str) -> None:
    # When the body does not satisfy the TaskSubmission model / Then 400 whose message says why, nothing stored
    response = api.call(ALICE, "POST", "/tasks", body)
    assert response.status_code == 400, response.text
    assert message(response).startswith("invalid request body: [")
    assert expected in message(response)


def test_malformed_json_is_400(api: Api) -> None:
    response = api.call(ALICE, "POST", "/tasks", '{"type": "a", "params": {')
    assert response.status_code == 400
    assert "not valid JSON" in message(response)
    for not_json in ("", "NaN", "{'type': 'a'}", b"\xff\xfe"):
        assert api.call(ALICE, "POST", "/tasks", not_json).status_code == 400


def test_a_content_type_without_a_template_is_415(api: Api) -> None:
    body = json.dumps({"type": "diagnostic.echo", "params": {}})
    response = signed_request(ALICE, "POST", api.url + "/tasks", body, {"Content-Type": "text/plain"})
    assert (response.status_code, response.json()) == (415, {"message": "Unsupported Media Type"})
    # application/json with parameters is application/json; no Content-Type at all means application/json
    charset = signed_request(
        ALICE, "POST", api.url + "/tasks", body, {"Content-Type": "application/json; charset=utf-8"}
    )
    assert charset.status_code == 202, charset.text
    assert signed_request(ALICE, "POST", api.url + "/tasks", body).status_code == 202


def test_requests_without_valid_sigv4_are_403(api: Api) -> None:
    url = api.url + "/tasks"
    body = json.dumps({"type": "a", "params": {}})
    headers = {"Content-Type": "application/json"}
    # no Authorization
    anonymous = SESSION.post(url, data=body, headers=headers, timeout=10)
    assert (anonymous.status_code, anonymous.json()) == (403, {"message": "Missing Authentication Token"})
    # the right key with the wrong secret
    wrong_secret = signed_request(ALICE, "POST", url, body, headers, secret="not-alice's-secret")
    assert wrong_secret.status_code == 403
    assert message(wrong_secret).startswith("The request signature we calculated does not match the signature")
    # a key nobody has
    stranger = LocalUser("mallory", "AKIALOCALMALLORY0003", "whatever", "AIDAMALLORY")
    unknown = signed_request(stranger, "POST", url, body, headers)
    assert (unknown.status_code, message(unknown)) == (403, "The security token included in the request is invalid.")
    # signed 20 minutes ago (replayed)
    stale = signed_request(ALICE, "POST", url, body, headers, when=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20))
    assert stale.status_code == 403 and message(stale).startswith("Signature expired")
    # a body swapped after signing
    prepared = requests.Request("POST", url, data=body, headers=headers).prepare()
    aws_request = AWSRequest(method="POST", url=url, data=body, headers=dict(prepared.headers))
    SigV4Auth(Credentials(ALICE.access_key_id, ALICE.secret_access_key), "execute-api", REGION).add_auth(aws_request)
    tampered = body.replace('"a"', '"b"')
    swapped = SESSION.post(url, data=tampered, headers=dict(aws_request.headers.items()), timeout=10)
    assert swapped.status_code == 403 and "does not match" in message(swapped)
    # a garbage Authorization header
    garbage = SESSION.post(url, data=body, headers={**headers, "Authorization": "Bearer abc"}, timeout=10)
    assert garbage.status_code == 403 and "Authorization header requires 'Credential' parameter" in message(garbage)


def test_signed_requests_with_query_strings_and_encoded_paths_verify(api: Api) -> None:
    # query strings the way botocore and requests encode them, and an id that needs percent-encoding
    assert api.call(ALICE, "GET", "/tasks/" + quote("a b/c'd\"é", safe="")).status_code == 404
    for query in ("?status=QUEUED&limit=5", "?limit=5&status=QUEUED", "?status=a%20b", "?status=a+b", "?status="):
        response = signed_request(ALICE, "GET", api.url + "/tasks/no-such-task" + query)
        assert response.status_code == 404, (query, response.text)


def test_a_signed_date_header_and_a_chunked_body_are_accepted(api: Api) -> None:
    credentials = Credentials(ALICE.access_key_id, ALICE.secret_access_key)
    # SigV4 with the Date header instead of X-Amz-Date
    dated = AWSRequest(method="GET", url=api.url + "/tasks/dated", headers={"Date": formatdate(usegmt=True)})
    SigV4Auth(credentials, "execute-api", REGION).add_auth(dated)
    response = SESSION.get(api.url + "/tasks/dated", headers=dict(dated.headers.items()), timeout=10)
    assert response.status_code == 404, response.text  # authenticated; the task does not exist
    # a body sent with Transfer-Encoding: chunked (signed over the whole body)
    body = b'{"type": "diagnostic.echo", "params": {"chunked": true}}'
    chunked = AWSRequest(method="POST", url=api.url + "/tasks", data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials, "execute-api", REGION).add_auth(chunked)
    response = SESSION.post(
        api.url + "/tasks", data=iter([body[:10], body[10:]]), headers=dict(chunked.headers.items()), timeout=10
    )
    assert response.status_code == 202, response.text
    item = api.item(response.json()["taskId"])
    assert item is not None and json.loads(item["params"]["S"]) == {"chunked": True}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("GET", "/tasks/a/b"), ("PUT", "/tasks"), ("PATCH", "/tasks/x"), ("GET", "/")],
)
def test_unknown_routes_and_methods_are_403_missing_authentication_token(api: Api, method: str, path: str) -> None:
    # even correctly signed, as AWS answers for IAM-authorized APIs
    response = signed_request(ALICE, method, api.url + path, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (403, {"message": "Missing Authentication Token"})
    wrong_stage = signed_request(ALICE, "GET", api.url.removesuffix("/v1") + "/v2/tasks")
    assert wrong_stage.status_code == 403


def test_a_body_over_10_mb_is_413(api: Api) -> None:
    body = json.dumps({"type": "diagnostic.echo", "params": {"blob": "x" * MAX_PAYLOAD_BYTES}})
    response = signed_request(ALICE, "POST", api.url + "/tasks", body, {"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (413, {"message": "Request Too Long"})
    # the connection was drained and closed cleanly: the next request works
    assert api.submit(ALICE, {"after": "413"}).status_code == 202


def test_an_item_over_400_kb_is_a_413_at_the_edge(api: Api) -> None:
    # Given params that would make the item larger than DynamoDB's 400 KB (well under the 10 MB API limit)
    response = api.call(ALICE, "POST", "/tasks", {"type": "diagnostic.echo", "params": {"blob": "x" * 450_000}})
    # Then the API refuses it before anything is stored, saying what to do (issue 9, defect 5)
    assert response.status_code == 413, response.text
    assert message(response).startswith("request too large: params may take at most 256000 bytes")


# --------------------------------------------------------------------------------------------------
# hostile strings reach VTL as data
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_in_params_round_trip_byte_for_byte(api: Api, text: str) -> None:
    # Given params whose keys and values are hostile to VTL and JSON
    params = {text: text, "v": text, "nested": {text: [text, {"k": text}]}}
    # When alice submits them
    response = api.submit(ALICE, params)
    assert response.status_code == 202, response.text
    task_id = response.json()["taskId"]
    # Then the stored JSON text and the GET answer hold exactly those strings
    item = api.item(task_id)
    assert item is not None and json.loads(item["params"]["S"]) == params
    fetched = api.call(ALICE, "GET", f"/tasks/{task_id}")
    assert fetched.status_code == 200 and fetched.json()["params"] == params


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_task_types_are_400_with_a_json_message(api: Api, text: str) -> None:
    response = api.call(ALICE, "POST", "/tasks", {"type": text, "params": {}, text: 1})
    assert response.status_code == 400
    assert message(response).startswith("invalid request body: [")


@pytest.mark.parametrize("key", HOSTILE_HEADERS)
def test_hostile_idempotency_keys_are_data(api: Api, key: str) -> None:
    response = api.submit(ALICE, {"k": key}, key=key)
    assert response.status_code == 202, response.text
    task_id = response.json()["taskId"]
    assert task_id.startswith("k-") and task_id.replace("-", "").replace("_", "").isalnum()
    fetched = api.call(ALICE, "GET", f"/tasks/{task_id}").json()
    assert fetched["idempotencyKey"] == key and fetched["params"] == {"k": key}


@pytest.mark.parametrize("key", ["\x01\x7f", "café", "na\u00efve"])
def test_idempotency_keys_outside_printable_ascii_are_refused_with_the_reason(api: Api, key: str) -> None:
    # Header bytes outside ASCII would be stored as other text than was sent (Latin-1 decoding): refuse them.
    response = api.submit(ALICE, {"k": key}, key=key)
    assert response.status_code == 400, response.text
    assert "Idempotency-Key must be printable ASCII" in message(response)


@pytest.mark.parametrize("text", HOSTILE[::3])
def test_hostile_strings_in_paths_queries_and_repeated_keys_never_5xx(api: Api, text: str) -> None:
    encoded = quote(text, safe="")
    assert api.call(ALICE, "GET", f"/tasks/{encoded}").status_code == 404
    assert api.call(ALICE, "DELETE", f"/tasks/{encoded}").status_code == 404
    listed = api.call(ALICE, "GET", f"/tasks?status={encoded}&limit={encoded}")
    assert listed.status_code == 200 and listed.json()["tasks"] == []
    # Idempotency keys must be printable ASCII (see test_idempotency_keys_outside_printable_ascii_are_refused…)
    header_safe = "".join(ch if " " <= ch <= "~" else "?" for ch in text)
    first = api.submit(BOB, {"t": text}, key=header_safe)
    again = api.submit(BOB, {"t": text}, key=header_safe)
    assert first.status_code == again.status_code == 202
    assert first.json()["taskId"] == again.json()["taskId"]


# --------------------------------------------------------------------------------------------------
# the gateway's own mechanics
# --------------------------------------------------------------------------------------------------


def test_every_request_writes_one_access_log_line(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="taskrail.local.apigw.access"):
        api.call(ALICE, "GET", "/tasks/access-log-probe")
    lines = [r.getMessage() for r in caplog.records if r.name == "taskrail.local.apigw.access"]
    assert len(lines) == 1
    assert "GET /v1/tasks/access-log-probe 404" in lines[0] and lines[0].endswith("ms")


@pytest.fixture(autouse=True)
def _no_mapping_template_failed(request: pytest.FixtureRequest) -> Iterator[None]:
    # After each test that used the real templates (in any order): no template failed, nothing unexpected happened
    yield
    if "api" in request.fixturenames:
        assert request.getfixturevalue("api").gateway.internal_errors == []


def test_a_minimal_api_with_mock_integration_greedy_paths_and_gateway_responses() -> None:
    # Given a hand-written (fixture) template: MOCK integration, {proxy+}, ANY, NONE auth, DEFAULT_4XX
    template = json.loads((FIXTURES / "mock_api.template.json").read_text())
    with LocalApiGateway(template, lambda value: value, "http://127.0.0.1:9") as gateway:
        assert gateway.routes() == [("ANY", "/files/{proxy+}"), ("GET", "/health")]
        health = SESSION.get(gateway.url + "/health", timeout=10)
        assert (health.status_code, health.json()) == (200, {"ok": True, "stage": "test"})
        greedy = SESSION.delete(gateway.url + "/files/a/b%20c", timeout=10)
        assert (greedy.status_code, greedy.json()) == (200, {"path": "a/b c"})
        unknown = SESSION.get(gateway.url + "/nope", timeout=10)
        assert unknown.status_code == 403
        assert unknown.json() == {"error": "Missing Authentication Token", "type": "MISSING_AUTHENTICATION_TOKEN"}
        assert unknown.headers["X-Hint"] == "check the path"
        teapot = gateway.handle(GatewayRequest("GET", "/test/health", [("Content-Type", "text/plain")]))
        assert (teapot.status, teapot.json()["type"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
        # a header override carrying request data cannot split the response
        echoed = SESSION.get(gateway.url + "/health?echo=" + quote("a\r\nInjected: yes é€"), timeout=10)
        assert echoed.status_code == 200
        assert echoed.headers["X-Echo"] == "a Injected: yes é?"
        assert "Injected" not in echoed.headers
        assert gateway.internal_errors == []
