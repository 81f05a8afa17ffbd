"""Bad input over HTTP, on the local stack: never a 5xx, never a corrupted task, never an evaluated template.

* Schema-based fuzzing: schemathesis generates requests from ``docs/openapi.json`` (generated from the API
  definition), SigV4-signed as alice; every answer must be documented and match its schema.
* A corpus of hostile strings goes through every field (``type``, params values and keys, ``Idempotency-Key``,
  ``taskId``, ``status``, ``limit``): each is stored and returned byte for byte, or refused with a 4xx that says why.
* Oversized bodies, wrong content types, malformed JSON, missing or forged credentials: each a clear 4xx.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
import schemathesis
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from task_common.contract import TERMINAL_STATUSES
from taskrail.local.stack import LocalStack
from taskrail.local.users import ALICE, LocalUser

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "docs" / "openapi.json"
JSON_TYPE = "application/json"
FUZZ_EXAMPLES = 25
# A known type (the API refuses unknown ones) whose model refuses every params sent here (it needs text or
# source): stored, then rejected by ValidateParameters, a short workflow.
STORED_TYPE = "text.stats"
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# Every attribute the API and the workflow write; anything else in an item came from user input breaking out.
TASK_ATTRIBUTES = frozenset(
    {
        "taskId", "userId", "type", "params", "paramsLocation", "status", "progress", "attempt", "executionArn",
        "error", "cause", "resultLocation", "createdAt", "startedAt", "updatedAt", "finishedAt", "cancelledAt",
        "idempotencyKey", "redriveCount", "outcomePending", "outcomeDelivered", "outcomeRetriggers", "pendingShard",
    }
)  # fmt: skip

HOSTILE: dict[str, str] = {
    "empty": "",
    "double-quote": '"',
    "single-quote": "'",
    "backslash": "\\",
    "trailing-backslash": "x\\",
    "backslash-quote": '\\"',
    "escape-sequence-text": "\\u0000\\n\\t",
    "crlf-and-tab": "a\r\nb\tc",
    "nul": "a\x00b",
    "c0-controls-and-del": "".join(map(chr, range(32))) + "\x7f",
    "c1-and-line-separators": "\x85\x9f\u2028\u2029",
    "bidi-and-zero-width": "\u202eevil\u202c\u200b\ufeff",
    "emoji-and-non-latin": "😀 👨\u200d👩\u200d👧 日本語 café",
    "lone-surrogate": "\ud800x",
    "vtl-set": "#set($x = 1)$x",
    "vtl-set-status": "#set($context.responseOverride.status = 500)",
    "vtl-util": "$util.escapeJavaScript('x') $util.base64Encode('x') $util.parseJson('{}')",
    "vtl-input": "$input.body $input.json('$') $input.path('$.type') $input.params()",
    "vtl-context": "$context.identity.user $context.requestId",
    "vtl-braced": "${x} ${context.identity.user} $!{x}",
    "vtl-silent": "$!x",
    "vtl-directives": "#if(true)x#end#foreach($i in [1..3])$i#end#stop",
    "vtl-comments": "## line\n#* block *#",
    "template-placeholders": "${TasksTableName} %%TASK_FIELDS%%",
    "json-breakout": '"},"userId":{"S":"AIDAEVIL"},"x":{"S":"',
    "json-document": '{"a": [1, {"b": null}], "c": "d"}',
    "json-fragments": '", "status": "SUCCEEDED", ] } {',
    "dynamodb-string-descriptor": '{"S": "x"}',
    "dynamodb-number-descriptor": '{"N": "1"}',
    "dynamodb-map-descriptor": '{"M": {"userId": {"S": "AIDAEVIL"}}}',
    "html": "</script><b>&amp;</b>",
    "url-encoded": "%22%27%5C%00%2F",
    "path-traversal": "../../a//b/?x=1#y",
    "long-10k": "x" * 10_000,
    "long-hostile-20k": ("\"'\\\n\x00😀#set($a=1)${x}$util.x" * 2_000)[:20_000],
}
NON_EMPTY = {label: value for label, value in HOSTILE.items() if value}
# HTTP ends a header field at a line break: such a value cannot be an Idempotency-Key, whatever the API does.
HEADER_SAFE = {label: value for label, value in HOSTILE.items() if "\r" not in value and "\n" not in value}


def hostile(values: dict[str, str]) -> Any:
    return pytest.mark.parametrize("value", list(values.values()), ids=list(values))


# --------------------------------------------------------------------------------------------------
# HTTP, signed as one of the local users, with the exact bytes given
# --------------------------------------------------------------------------------------------------


class _SignedAt(SigV4Auth):
    """botocore's SigV4 at a chosen time (for stale signatures)."""

    def __init__(self, credentials: Credentials, region: str, when: dt.datetime) -> None:
        super().__init__(credentials, "execute-api", region)
        self._when = when

    def add_auth(self, request: AWSRequest) -> None:
        request.context["timestamp"] = self._when.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical = self.canonical_request(request)
        self._inject_signature_to_request(request, self.signature(self.string_to_sign(request, canonical), request))


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def message(self) -> str:
        return str(self.json().get("message", ""))


def utf8(value: str) -> bytes:
    """UTF-8, a lone surrogate included (as the invalid bytes a careless encoder writes)."""
    return value.encode("utf-8", errors="surrogatepass")


def wire(value: str) -> str:
    """A header value as its UTF-8 bytes on the wire (http.client writes header strings as Latin-1)."""
    return utf8(value).decode("latin-1")


def url_quoted(value: str) -> str:
    return quote(utf8(value), safe="")


def send(
    api_url: str,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    user: LocalUser | None = ALICE,
    secret: str | None = None,
    when: dt.datetime | None = None,
    region: str = "us-east-1",
) -> Answer:
    """One request with exactly these bytes; SigV4-signed as ``user`` (None: unsigned)."""
    url = api_url.rstrip("/") + path
    all_headers = {"Content-Type": JSON_TYPE} | (headers or {})
    all_headers = {name: value for name, value in all_headers.items() if value is not None}
    if user is not None:
        credentials = Credentials(user.access_key_id, secret or user.secret_access_key)
        request = AWSRequest(method=method, url=url, data=body, headers=all_headers)
        _SignedAt(credentials, region, when or dt.datetime.now(dt.UTC)).add_auth(request)
        all_headers = dict(request.headers.items())
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        connection.putrequest(
            method, parts.path + (f"?{parts.query}" if parts.query else ""), skip_accept_encoding=True
        )
        for name, value in all_headers.items():
            connection.putheader(name, value.encode("latin-1"))
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, response.read(), response.getheader("Content-Type") or "")
    finally:
        connection.close()


def json_body(document: Any, *, escaped: bool) -> bytes:
    """The document as JSON: non-ASCII as ``\\u`` escapes, or as raw UTF-8 (a lone surrogate then is invalid UTF-8)."""
    return utf8(json.dumps(document, ensure_ascii=escaped))


def idempotent_task_id(user: LocalUser, key: str) -> str:
    """The task id the API derives from an Idempotency-Key (submit_task.request.vtl)."""
    encoded = base64.b64encode(f"{user.principal_id}|{key}".encode()).decode()
    return "k-" + encoded.replace("+", "-").replace("/", "_").replace("=", "")


# --------------------------------------------------------------------------------------------------
# Fixtures: the tasks this module stores are deleted once their (short) workflow is over
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def created(stack: LocalStack) -> Iterator[list[str]]:
    task_ids: list[str] = []
    yield task_ids
    forget(stack, task_ids)


def forget(stack: LocalStack, task_ids: list[str], timeout: float = 60) -> None:
    """Deletes the tasks once terminal, so other tests list only their own (and no DLQ message is provoked)."""
    assert stack.info is not None
    dynamodb, table = stack.clients("dynamodb"), stack.info.tasks_table
    deadline = time.monotonic() + timeout
    pending = list(dict.fromkeys(task_ids))
    while pending and time.monotonic() < deadline:
        for task_id in list(pending):
            item = dynamodb.get_item(TableName=table, Key={"taskId": {"S": task_id}}).get("Item")
            if item is None or item["status"]["S"] in TERMINAL_STATUSES:
                pending.remove(task_id)
        time.sleep(0.2)
    for task_id in dict.fromkeys(task_ids):
        dynamodb.delete_item(TableName=table, Key={"taskId": {"S": task_id}})
    task_ids.clear()


def stored_item(stack: LocalStack, task_id: str) -> dict[str, Any]:
    assert stack.info is not None
    response = stack.clients("dynamodb").get_item(
        TableName=stack.info.tasks_table, Key={"taskId": {"S": task_id}}, ConsistentRead=True
    )
    return response.get("Item", {})


# --------------------------------------------------------------------------------------------------
# Schema-based fuzzing (schemathesis)
# --------------------------------------------------------------------------------------------------


class SigV4RequestsAuth(requests.auth.AuthBase):
    """Signs the final request (method, URL, headers, body) as a local user, as ``TaskrailClient`` does."""

    def __init__(self, user: LocalUser, region: str) -> None:
        self._signer = SigV4Auth(Credentials(user.access_key_id, user.secret_access_key), "execute-api", region)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode("utf-8") if isinstance(request.body, str) else (request.body or b"")
        signed = {
            name: value
            for name, value in request.headers.items()
            if name.lower() in ("content-type", "idempotency-key") and isinstance(value, str)
        }
        aws_request = AWSRequest(method=request.method, url=request.url, data=body, headers=signed)
        self._signer.add_auth(aws_request)
        request.body = body or None
        for name in ("Authorization", "X-Amz-Date"):
            request.headers[name] = aws_request.headers[name]
        return request


schema = schemathesis.openapi.from_path(OPENAPI)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=FUZZ_EXAMPLES,
    deterministic=True,
    no_shrink=True,
    with_security_parameters=False,
)
# Methods the API does not define are refused by test_method_the_api_does_not_define_is_refused_with_403; here
# they would end each operation's run at the first one that fails, hiding whatever the generated requests find.
schema.config.phases.coverage.unexpected_methods = {"put", "patch", "options"}
FUZZ_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_fuzzed_requests_get_documented_answers_and_never_a_5xx(case, stack: LocalStack, created: list[str]):
    assert stack.info is not None
    auth = SigV4RequestsAuth(ALICE, stack.info.region)

    response = case.call(base_url=stack.info.api_url, auth=auth, timeout=60)

    if response.status_code == 202 and case.method == "POST":
        created.append(response.json()["taskId"])
    case.validate_response(response, checks=FUZZ_CHECKS)


# --------------------------------------------------------------------------------------------------
# Hostile strings through every field
# --------------------------------------------------------------------------------------------------


def assert_refused_with_a_reason(answer: Answer, context: str, reason: str | None = None) -> None:
    """A 4xx that says why; with ``reason``, exactly a 400 whose message contains it."""
    assert 400 <= answer.status < 500, f"{context}: {answer.status} {answer.body[:500]!r}"
    assert answer.content_type.startswith(JSON_TYPE), context
    assert answer.message.strip(), f"{context}: a 4xx must say why: {answer.body[:500]!r}"
    if reason is not None:
        assert answer.status == 400, f"{context}: {answer.status} {answer.body[:500]!r}"
        assert reason in answer.message, f"{context}: {answer.message[:500]!r} does not say {reason!r}"


def assert_stored_exactly(
    stack: LocalStack, task_id: str, params: Any, *, key: str | None = None, task_type: str = STORED_TYPE
) -> None:
    """What GET answers and what the table holds are exactly what was submitted, for this user."""
    assert stack.info is not None
    answer = send(stack.info.api_url, "GET", f"/tasks/{quote(task_id, safe='')}")
    assert answer.status == 200, answer.body[:500]
    task = json.loads(answer.body)  # valid JSON, whatever was stored
    assert task["params"] == params
    assert task["type"] == task_type
    assert task.get("idempotencyKey") == key
    item = stored_item(stack, task_id)
    assert item["userId"] == {"S": ALICE.principal_id}
    assert item["type"] == {"S": task_type}
    assert json.loads(item["params"]["S"]) == params
    assert item.get("idempotencyKey") == ({"S": key} if key else None)
    assert set(item) <= TASK_ATTRIBUTES, f"unexpected attributes {set(item) - TASK_ATTRIBUTES}"


def submit_raw(stack: LocalStack, body: bytes, headers: dict[str, str] | None = None) -> Answer:
    assert stack.info is not None
    return send(stack.info.api_url, "POST", "/tasks", body, headers)


# docs/RELIABILITY.md: the gateway refuses what it cannot carry faithfully. Every other hostile string is stored.
LONE_SURROGATE_REASON = "a string contains a lone UTF-16 surrogate"
REFUSED_PARAMS = {  # label -> (reason when \u-escaped, reason as raw bytes: a lone surrogate is invalid UTF-8)
    "lone-surrogate": (LONE_SURROGATE_REASON, "request body is not valid JSON: 'utf-8' codec can't decode"),
}


def is_printable_ascii(value: str) -> bool:
    return all(" " <= ch <= "~" for ch in value)


@pytest.mark.parametrize("escaped", [True, False], ids=["json-escaped", "raw-utf8"])
@hostile(HOSTILE)
def test_hostile_string_in_params_values_and_keys_is_stored_exactly_or_refused(stack, created, value, escaped):
    params = {"value": value, "nested": {"list": [value, {"deep": value}]}, value: "as a key"}
    refused = next((reasons for label, reasons in REFUSED_PARAMS.items() if HOSTILE[label] == value), None)

    answer = submit_raw(stack, json_body({"type": STORED_TYPE, "params": params}, escaped=escaped))

    if refused is not None:
        assert_refused_with_a_reason(answer, "POST /tasks", refused[0] if escaped else refused[1])
        return
    assert answer.status == 202, answer.body[:500]
    task_id = answer.json()["taskId"]
    created.append(task_id)
    try:
        assert_stored_exactly(stack, task_id, params)
    except AssertionError:
        forget(stack, [task_id])  # a corrupted task would break every later listing of alice's tasks
        raise


@hostile(HOSTILE)
def test_hostile_string_as_the_type_is_refused_with_the_reason_and_nothing_is_stored(stack, value):
    key = f"hostile-type-{time.time_ns()}"

    answer = submit_raw(stack, json_body({"type": value, "params": {}}, escaped=True), {"Idempotency-Key": key})

    assert answer.status == 400, answer.body[:500]
    assert answer.message.startswith("invalid request body: "), answer.message[:500]
    assert stored_item(stack, idempotent_task_id(ALICE, key)) == {}


# DynamoDB's limit on a partition key (2048 bytes); the task id is "k-" + base64 of "{principal}|{key}".
MAX_PARTITION_KEY_BYTES = 2048


@hostile(HEADER_SAFE)
def test_hostile_idempotency_key_is_stored_exactly_or_refused(stack, created, value):
    body = json_body({"type": STORED_TYPE, "params": {}}, escaped=True)

    answer = submit_raw(stack, body, {"Idempotency-Key": wire(value)})

    if not is_printable_ascii(value):  # a documented deviation of the local gateway (taskrail/local/apigw.py)
        assert_refused_with_a_reason(answer, "POST /tasks", "header Idempotency-Key must be printable ASCII")
        return
    if len(idempotent_task_id(ALICE, value)) > MAX_PARTITION_KEY_BYTES:
        assert_refused_with_a_reason(answer, "POST /tasks", "Size of hashkey has exceeded the maximum size limit")
        return
    assert answer.status == 202, answer.body[:500]
    task_id = answer.json()["taskId"]
    created.append(task_id)
    assert_stored_exactly(stack, task_id, {}, key=value or None)
    again = submit_raw(stack, body, {"Idempotency-Key": wire(value)})
    if value:
        assert again.json() == {"taskId": task_id, "status": again.json()["status"], "duplicate": True}


@pytest.mark.parametrize("method", ["GET", "DELETE"])
@hostile(NON_EMPTY)
def test_hostile_task_id_in_the_path_is_not_found_or_refused(stack, method, value):
    answer = send(stack.info.api_url, method, f"/tasks/{url_quoted(value)}")

    assert answer.status == 404, answer.body[:500]
    assert answer.json() == {"message": "task not found"}


@pytest.mark.parametrize("name", ["status", "limit"])
@hostile(HOSTILE)
def test_hostile_list_query_parameter_lists_only_matching_tasks_or_is_refused(stack, name, value):
    unfiltered = json.loads(send(stack.info.api_url, "GET", "/tasks").body)

    answer = send(stack.info.api_url, "GET", f"/tasks?{name}={url_quoted(value)}")

    # A status no task has lists nothing; an empty one, or a limit that is not a number, is ignored.
    assert answer.status == 200, answer.body[:500]
    listing = json.loads(answer.body)
    assert listing["count"] == len(listing["tasks"]) <= 100
    if name == "status" and value:
        assert listing["tasks"] == [], "no task has a hostile status"
    else:
        assert listing["count"] == unfiltered["count"]


# --------------------------------------------------------------------------------------------------
# JSON that a parser may choke on
# --------------------------------------------------------------------------------------------------

MALFORMED: dict[str, tuple[bytes, str]] = {
    "empty-body": (b"", "not valid JSON"),
    "truncated": (b'{"type": "text.stats", "params": {', "not valid JSON"),
    "trailing-garbage": (b'{"type": "text.stats", "params": {}} x', "not valid JSON"),
    "single-quotes": (b"{'type': 'text.stats', 'params': {}}", "not valid JSON"),
    "nan": (b'{"type": "text.stats", "params": {"x": NaN}}', "not valid JSON"),
    "infinity-literal": (b'{"type": "text.stats", "params": {"x": -Infinity}}', "not valid JSON"),
    "invalid-utf8": (b'{"type": "text.stats", "params": {"x": "\xff\xfe\xc3"}}', "not valid JSON"),
    "overlong-utf8": (b'{"type": "text.stats", "params": {"x": "\xc0\xaf"}}', "not valid JSON"),
    "encoded-surrogate-utf8": (b'{"type": "text.stats", "params": {"x": "\xed\xa0\x80"}}', "not valid JSON"),
    "utf16": ('{"type": "text.stats", "params": {}}'.encode("utf-16"), "not valid JSON"),
    "utf8-bom": (b'\xef\xbb\xbf{"type": "text.stats", "params": {}}', "not valid JSON"),
    "array": (b"[]", "array"),
    "string": (b'"text.stats"', "string"),
    "null": (b"null", "null"),
    "params-not-an-object": (b'{"type": "text.stats", "params": "x"}', "string"),
    "params-missing": (b'{"type": "text.stats"}', "params"),
    "type-not-a-string": (b'{"type": {"S": "text.stats"}, "params": {}}', "object"),
    "extra-property": (b'{"type": "text.stats", "params": {}, "userId": "AIDAEVIL"}', "userId"),
}


@pytest.mark.parametrize(("body", "reason"), list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_json_is_refused_with_the_reason(stack, body, reason):
    answer = submit_raw(stack, body)

    assert answer.status == 400, answer.body[:500]
    assert answer.message.startswith("invalid request body: "), answer.message
    assert reason in answer.message


MAX_JSON_DEPTH = 64  # docs/RELIABILITY.md: "JSON nested deeper than 64 levels" is refused


def nested_to(depth: int) -> str:
    """Params whose deepest value is ``depth`` levels below the request body ({"type", "params": {"a": [[…0]]}})."""
    return '{"a": ' + "[" * (depth - 2) + "0" + "]" * (depth - 2) + "}"


DEEPER_THAN_64 = f"nested deeper than {MAX_JSON_DEPTH} levels"
STORED = None
# Each edge case with its one required outcome: STORED, or refused with 400 and this reason.
JSON_EDGES: dict[str, tuple[str, str | None]] = {
    "number-beyond-double": ('{"n": 1e999}', "number 1e999 is out of range"),
    "negative-number-beyond-double": ('{"n": -1e999}', "number -1e999 is out of range"),
    "escaped-lone-surrogate": ('{"s": "\\ud800"}', LONE_SURROGATE_REASON),
    "escaped-lone-surrogate-key": ('{"\\udc00": 1}', LONE_SURROGATE_REASON),
    "nested-64-deep": (nested_to(MAX_JSON_DEPTH), STORED),
    "nested-65-deep": (nested_to(MAX_JSON_DEPTH + 1), DEEPER_THAN_64),
    "nested-900-deep": ('{"a": ' + "[" * 900 + "]" * 900 + "}", DEEPER_THAN_64),
    # Python's parser gives up first here (RecursionError): refused all the same.
    "nested-5000-deep": ('{"a": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
    "duplicate-keys": ('{"a": 1, "a": 2}', STORED),
}


@pytest.mark.parametrize(("params_text", "refusal"), list(JSON_EDGES.values()), ids=list(JSON_EDGES))
def test_json_edge_cases_in_params_are_stored_as_valid_json_or_refused(stack, created, params_text, refusal):
    answer = submit_raw(stack, f'{{"type": "{STORED_TYPE}", "params": {params_text}}}'.encode())

    if refusal is not None:
        assert_refused_with_a_reason(answer, "POST /tasks", refusal)
        return
    assert answer.status == 202, answer.body[:500]
    task_id = answer.json()["taskId"]
    created.append(task_id)
    try:
        got = send(stack.info.api_url, "GET", f"/tasks/{task_id}")
        assert got.status == 200, got.body[:300]
        task = json.loads(got.body, parse_constant=lambda name: pytest.fail(f"GET answered {name}: not JSON"))
        assert task["params"] == json.loads(params_text)
    except (AssertionError, pytest.fail.Exception, ValueError):
        forget(stack, [task_id])  # a corrupted task would break every later listing of alice's tasks
        raise


# --------------------------------------------------------------------------------------------------
# Size, content type, credentials
# --------------------------------------------------------------------------------------------------


def test_body_over_the_payload_limit_is_refused_with_413(stack):
    body = b'{"type": "text.stats", "params": {"text": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}}'

    answer = submit_raw(stack, body)

    assert answer.status == 413
    assert answer.message == "Request Too Long"


def test_body_over_the_item_size_limit_is_refused_with_the_reason(stack):
    answer = submit_raw(stack, json_body({"type": STORED_TYPE, "params": {"text": "x" * 500_000}}, escaped=True))

    # Bounded at the edge so that every later write on the item stays under DynamoDB's 400 KB (issue 9, defect 5)
    assert answer.status == 413
    assert answer.message.startswith("request too large")


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "*/*"],
)
@pytest.mark.parametrize(("method", "path"), [("POST", "/tasks"), ("GET", "/tasks"), ("GET", "/tasks/x")])
def test_wrong_content_type_is_refused_with_415(stack, content_type, method, path):
    body = b'{"type": "text.stats", "params": {}}' if method == "POST" else b""

    answer = send(stack.info.api_url, method, path, body, {"Content-Type": content_type})

    assert answer.status == 415, answer.body[:300]
    assert answer.message == "Unsupported Media Type"


def test_missing_credentials_are_refused_with_403(stack):
    answer = send(stack.info.api_url, "GET", "/tasks", user=None)

    assert answer.status == 403
    assert answer.message == "Missing Authentication Token"


def test_unknown_access_key_is_refused_with_403(stack):
    stranger = LocalUser("mallory", "AKIALOCALMALLORY0003", "whatever", "AIDALOCALMALLORY0003")

    answer = send(stack.info.api_url, "GET", "/tasks", user=stranger)

    assert answer.status == 403
    assert answer.message == "The security token included in the request is invalid."


def test_signature_with_the_wrong_secret_is_refused_with_403(stack):
    answer = send(stack.info.api_url, "GET", "/tasks", user=ALICE, secret="not-alice-s-secret")

    assert answer.status == 403
    assert answer.message.startswith("The request signature we calculated does not match")


def test_body_changed_after_signing_is_refused_with_403(stack):
    url = stack.info.api_url + "/tasks"
    signed = AWSRequest(method="POST", url=url, data=b'{"type": "text.stats", "params": {}}')
    signed.headers["Content-Type"] = JSON_TYPE
    SigV4Auth(Credentials(ALICE.access_key_id, ALICE.secret_access_key), "execute-api", "us-east-1").add_auth(signed)
    tampered = b'{"type": "text.stats", "params": {"text": "more"}}'

    response = requests.post(url, data=tampered, headers=dict(signed.headers.items()), timeout=30)

    assert response.status_code == 403
    assert response.json()["message"].startswith("The request signature we calculated does not match")


@pytest.mark.parametrize("minutes", [-20, 20], ids=["expired", "in-the-future"])
def test_signature_outside_the_clock_window_is_refused_with_403(stack, minutes):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)

    answer = send(stack.info.api_url, "GET", "/tasks", when=when)

    assert answer.status == 403
    assert answer.message.startswith("Signature expired" if minutes < 0 else "Signature not yet current")


def test_signature_for_another_region_is_refused_with_403(stack):
    answer = send(stack.info.api_url, "GET", "/tasks", region="eu-west-1")

    assert answer.status == 403
    assert "region" in answer.message


@pytest.mark.parametrize("method", ["PUT", "PATCH", "OPTIONS", "TRACE", "CONNECT", "BREW"])
@pytest.mark.parametrize("path", ["/tasks", "/tasks/x"])
def test_method_the_api_does_not_define_is_refused_with_403(stack, method, path):
    answer = send(stack.info.api_url, method, path)

    assert answer.status == 403, answer.body[:300]
    assert answer.message == "Missing Authentication Token"


@pytest.mark.parametrize("path", ["/admin", "/tasks/x/replay", "/", "/../tasks", "/v1/tasks"])
def test_path_the_api_does_not_define_is_refused_with_403(stack, path):
    answer = send(stack.info.api_url, "POST", path, b"{}")

    assert answer.status == 403, answer.body[:300]
    assert answer.message == "Missing Authentication Token"
