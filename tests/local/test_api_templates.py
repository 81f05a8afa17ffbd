"""The deployed mapping templates (infra/constructs/api_templates) keep hostile user data as data.

Every request template must render valid JSON in which the caller's strings land byte for byte; every
response template must render valid JSON whose values are exactly what DynamoDB returned, with the right
status override. The templates are loaded as the stack deploys them (``load_template``).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from infra.constructs.api import TEMPLATES_DIR, load_template
from infra.constructs.api_limits import MAX_STORED_PARAMS_BYTES
from task_common.contract import PENDING_SHARDS, TIMESTAMP_FIELDS, TIMESTAMP_PATTERN, api_timestamp
from taskrail.local.vtl import ApiRequest, RenderedResponse, render_request, render_response

TABLE_NAME = "taskrail-TasksTable"
USER = "AIDAEXAMPLEALICE"
OTHER_USER = "AIDAEXAMPLEMALLORY"
REQUEST_ID = "c0ffee00-1111-4222-8333-444455556666"
EPOCH_MS = 1_700_000_000_123
ISO_STORED = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|\+00:00)"
CCF = "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
CANCEL_REFUSED = "; only QUEUED or RUNNING tasks can be cancelled"

REQUEST_TEMPLATES = [
    "cancel_task.request.vtl",
    "get_task.request.vtl",
    "list_tasks.request.vtl",
    "read_me.request.vtl",
    "read_result.request.vtl",
    "submit_task.request.vtl",
    "update_profile.request.vtl",
]
# Requests to a function (a Lambda custom integration) rather than to DynamoDB: they name no table.
FUNCTION_REQUESTS = ["read_me.request.vtl", "read_result.request.vtl"]
# Requests to the Profiles table (PUT /me/profile), named by its own placeholder.
PROFILE_REQUESTS = ["update_profile.request.vtl"]
PROFILES_TABLE = "ProfilesTable"  # load_template's default for ${ProfilesTableName}
RESPONSE_TEMPLATES = [
    "cancel_task.error.vtl",
    "cancel_task.response.vtl",
    "dynamodb.error.vtl",
    "get_task.response.vtl",
    "list_tasks.response.vtl",
    "read_me.error.vtl",
    "read_me.response.vtl",
    "read_result.error.vtl",
    "read_result.response.vtl",
    "service_error.vtl",
    "submit_task.error.vtl",
    "submit_task.response.vtl",
    "update_profile.error.vtl",
    "update_profile.response.vtl",
]
INCLUDES = [
    "epoch_ms_time.vtl",
    "iso_time.vtl",
    "next_token.vtl",
    "owner.vtl",
    "submission_id.vtl",
    "task_fields.vtl",
    "throttled.vtl",
    "throttled_answer.vtl",
]

HOSTILE: dict[str, str] = {
    "empty": "",
    "double-quote": '"',
    "single-quote": "'",
    "mixed-quotes": 'it\'s "quoted"',
    "backslash": "\\",
    "trailing-backslash": "x\\",
    "backslash-double-quote": '\\"',
    "backslash-single-quote": "\\'",
    "escape-sequence-text": "\\u0000\\n\\t",
    "newline": "a\nb",
    "crlf": "a\r\nb",
    "tab": "a\tb",
    "nul": "a\x00b",
    "all-c0-controls-and-del": "".join(map(chr, range(32))) + "\x7f",
    "c1-and-line-separators": "\x85\x9f\u2028\u2029",
    "rtl-marks": "\u200f\u202eevil\u202c\u200e",
    "zero-width-and-bom": "\u200b\u200d\ufeff",
    "emoji": "😀 👨\u200d👩\u200d👧 🏳️\u200d🌈",
    "non-latin": "日本語 café Ελληνικά עברית",
    "vtl-set": "#set($a=1)$a",
    "vtl-util": "$util.escapeJavaScript('x')",
    "vtl-braced-ref": "${x}",
    "vtl-if": "#if(true)x#end",
    "vtl-foreach": "#foreach($i in [1..3])$i#end",
    "vtl-context": "$context.identity.user $context.requestId",
    "vtl-input": "$input.body $input.json('$') $input.params()",
    "vtl-silent-ref": "$!x",
    "vtl-comments": "## line\n#* block *#",
    "vtl-escaped-ref": "\\$x \\#set",
    "template-placeholders": "${TasksTableName} %%TASK_FIELDS%%",
    "java-replacement": "$1 \\$ ${name} $0",
    "json-breakout": '"},"x":{"S":"',
    "dynamodb-descriptor": '{"S": "x"}',
    "json-document": '{"a": [1, {"b": null}], "c": "d"}',
    "html": "</script><b>&amp;</b>",
    "slashes": "/a//b/",
    "url-encoded": "%22%27%5C%00",
    "long-50k": "x" * 50_000,
    "long-50k-hostile": ("\"'\\\n\t\x00😀\u202e#set($a=1)${x}" * 3_000)[:50_000],
}
# The values a template must escape: each breaks the rendered JSON (or changes the value) when the escaping
# of the field it targets is broken, without $util.escapeJavaScript (", \, control characters) or without
# the .replaceAll("\\'", "'") that undoes its \' (JSON has no \' escape). Non-ASCII and VTL-looking text
# cannot fail that way; they are checked by the whole-corpus tests and by tests/local/test_vtl.py.
ESCAPED = {label: value for label, value in HOSTILE.items() if re.search("['\"\\\\\x00-\x1f]", value)}
NON_EMPTY = {label: value for label, value in HOSTILE.items() if value}
FINISHED = ["SUCCEEDED", "REJECTED", "FAILED", "CANCELLED"]


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def a_request(**overrides: Any) -> ApiRequest:
    fields: dict[str, Any] = {
        "method": "GET",
        "resource_path": "/tasks/{taskId}",
        "path": "/tasks/t-1",
        "path_params": {"taskId": "t-1"},
        "headers": {"Content-Type": "application/json"},
        "request_id": REQUEST_ID,
        "identity": {"user": USER},
        "request_time_epoch_ms": EPOCH_MS,
    }
    fields.update(overrides)
    return ApiRequest(**fields)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate keys {duplicates}: a value broke out of its string")
    return dict(pairs)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json(text: str, template: str) -> Any:
    """json.loads, but also refusing duplicate keys and NaN/Infinity; fails the test with the output."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant)
    except ValueError as error:
        raise AssertionError(f"{template} rendered invalid JSON ({error}):\n{text[:3000]}") from error


def render_request_json(template: str, request: ApiRequest) -> Any:
    return strict_json(render_request(load_template(template, TABLE_NAME), request), template)


def render_response_json(template: str, request: ApiRequest, integration_body: Any) -> tuple[Any, RenderedResponse]:
    rendered = render_response(load_template(template, TABLE_NAME), request, json.dumps(integration_body))
    return strict_json(rendered.body, template), rendered


SET_IF_ABSENT = re.compile(r"(#?\w+) = if_not_exists\(\1, (:\w+)\)")


def created_item(update: dict[str, Any]) -> dict[str, Any]:
    """The item submit_task.request.vtl's UpdateItem creates for a new id: its Key, and each attribute it sets
    only if absent (``SET a = if_not_exists(a, :v)``) with its value."""
    names = update.get("ExpressionAttributeNames", {})
    values = update.get("ExpressionAttributeValues", {})
    pairs = SET_IF_ABSENT.findall(update["UpdateExpression"])
    return {**update["Key"], **{names.get(name, name): values[value] for name, value in pairs}}


def idempotent_task_id(user: str, key: str) -> str:
    """The task id the API promises for (caller, Idempotency-Key): URL-safe base64, unpadded."""
    return "k-" + base64.urlsafe_b64encode(f"{user}|{key}".encode()).decode("ascii").rstrip("=")


def submission(task_type: str, params: Any, key: str | None = None, user: str = USER) -> ApiRequest:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return a_request(
        method="POST",
        resource_path="/tasks",
        path="/tasks",
        path_params={},
        headers=headers,
        identity={"user": user},
        body=json.dumps({"type": task_type, "params": params}, ensure_ascii=False),
    )


def profile_update(body: Any, user: str = USER) -> ApiRequest:
    return a_request(
        method="PUT",
        resource_path="/me/profile",
        path="/me/profile",
        path_params={},
        identity={"user": user},
        body=json.dumps(body, ensure_ascii=False),
    )


def hostile_params(value: str) -> dict[str, Any]:
    return {
        value: value,
        "text": value,
        "nested": {"list": [value, {value: [value]}], "empty": {}, "none": []},
        "numbers": [0, -1, 1.5, 12345678901234567890, 1e-7],
        "flags": [True, False, None],
    }


def params_text(params: Any) -> str:
    """``$input.json('$.params')`` as the local emulator renders it: compact, non-ASCII unescaped."""
    return json.dumps(params, ensure_ascii=False, separators=(",", ":"))


def stored_size_bound(text: str) -> int:
    """What submit_task.request.vtl computes: UTF-16 units + 2 x non-ASCII units (never below the UTF-8 size)."""
    units = len(text.encode("utf-16-le", "surrogatepass")) // 2
    return units + 2 * (units - sum(1 for char in text if ord(char) < 128))


def fits(params: Any) -> bool:
    return stored_size_bound(params_text(params)) <= MAX_STORED_PARAMS_BYTES


def assert_refused_as_too_large(put: dict[str, Any]) -> None:
    """The request template's refusal: nothing of the submission, a condition that cannot hold."""
    assert put["ConditionExpression"] == "attribute_exists(taskId) AND attribute_not_exists(taskId)"
    assert put["Key"] == {"taskId": {"S": REQUEST_ID}} and created_item(put) == put["Key"]
    assert put["ReturnValuesOnConditionCheckFailure"] == "NONE"


def dynamodb_item(**strings: str) -> dict[str, Any]:
    """A Tasks item as GetItem/Query return it."""
    item: dict[str, Any] = {
        "taskId": {"S": "t-1"},
        "userId": {"S": USER},
        "type": {"S": "text.stats"},
        "status": {"S": "FAILED"},
        "progress": {"N": "40"},
        "attempt": {"N": "2"},
        "createdAt": {"N": "1700000000123"},
        "params": {"S": '{"text":"x"}'},
    }
    item.update({name: {"S": value} for name, value in strings.items()})
    return item


def expected_task(item: dict[str, Any]) -> dict[str, Any]:
    """What GET /tasks/{id} promises for an item: every string verbatim, params as the JSON it stores."""
    task: dict[str, Any] = {
        "taskId": item["taskId"]["S"],
        "type": item["type"]["S"],
        "status": item["status"]["S"],
        "progress": int(item["progress"]["N"]),
        "attempt": int(item["attempt"]["N"]),
        "createdAt": api_timestamp(int(item["createdAt"]["N"])),
        "params": json.loads(item["params"]["S"]),
    }
    if "cancelledAt" in item:
        task["cancelledAt"] = api_timestamp(int(item["cancelledAt"]["N"]))
    for name in ("startedAt", "updatedAt", "finishedAt"):
        if item.get(name, {}).get("S"):
            task[name] = normalised_time(item[name]["S"])
    for name in ("resultLocation", "error", "cause", "executionArn", "idempotencyKey"):
        if item.get(name, {}).get("S"):
            task[name] = item[name]["S"]
    return task


def expected_listed_task(item: dict[str, Any]) -> dict[str, Any]:
    """What GET /tasks promises for an item: the same as GET /tasks/{id}, without params (its index does not project
    them)."""
    task = expected_task(item)
    del task["params"]
    return task


def normalised_time(stored: str) -> str:
    """A stored ISO time as the API answers it (RFC 3339, milliseconds, Z); any other text verbatim."""
    try:
        moment = dt.datetime.fromisoformat(stored)
    except ValueError:
        return stored
    if moment.utcoffset() != dt.timedelta(0) or not re.fullmatch(ISO_STORED, stored):
        return stored
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def hostile_item(value: str, user: str = USER) -> dict[str, Any]:
    strings = ["startedAt", "updatedAt", "finishedAt", "resultLocation", "error", "cause", "executionArn"]
    item = dynamodb_item(taskId=value, type=value, status=value, idempotencyKey=value, **dict.fromkeys(strings, value))
    item["userId"] = {"S": user}
    item["params"] = {"S": json.dumps(hostile_params(value), ensure_ascii=False, separators=(",", ":"))}
    item["cancelledAt"] = {"N": "1700000000999"}
    return item


# --------------------------------------------------------------------------------------------------
# Coverage of the template directory
# --------------------------------------------------------------------------------------------------


def test_every_template_file_is_covered_by_these_tests():
    # A new template must be added to one of the lists (and get its hostile cases) before it deploys
    on_disk = sorted(path.name for path in TEMPLATES_DIR.glob("*.vtl"))

    assert on_disk == sorted([*REQUEST_TEMPLATES, *RESPONSE_TEMPLATES, *INCLUDES])
    assert sorted(path.name for path in TEMPLATES_DIR.glob("*.request.vtl")) == REQUEST_TEMPLATES
    assert {path.name for path in TEMPLATES_DIR.glob("*.response.vtl")} | {
        path.name for path in TEMPLATES_DIR.glob("*.error.vtl")
    } <= set(RESPONSE_TEMPLATES)


PLACEHOLDER = re.compile(r"%%[A-Z_]+%%|\$\{TasksTableName\}")


@pytest.mark.parametrize(
    "template",
    [
        name
        for name in [*REQUEST_TEMPLATES, *RESPONSE_TEMPLATES]
        if PLACEHOLDER.search((TEMPLATES_DIR / name).read_text())
    ],
)
def test_templates_are_deployed_with_includes_and_table_name_expanded(template: str):
    # Given a template file with an include or the table name placeholder (only those are listed)
    assert PLACEHOLDER.search((TEMPLATES_DIR / template).read_text())

    text = load_template(template, TABLE_NAME)

    assert "%%" not in text
    assert "${TasksTableName}" not in text


# --------------------------------------------------------------------------------------------------
# Request templates
# --------------------------------------------------------------------------------------------------


def test_submit_task_request_stores_params_made_of_the_whole_corpus():
    # Given params whose keys and values are every hostile string at once, nested
    params = {
        "by-key": {value: label for label, value in HOSTILE.items()},
        "by-value": dict(HOSTILE),
        "as-list": list(HOSTILE.values()),
        "deep": [[{"k": [HOSTILE["json-breakout"], {HOSTILE["vtl-set"]: HOSTILE["dynamodb-descriptor"]}]}]],
    }

    short = {label: value for label, value in HOSTILE.items() if not label.startswith("long")}
    small = {
        "by-key": {value: label for label, value in short.items()},
        "by-value": dict(short),
        "as-list": list(short.values()),
        "deep": params["deep"],
    }

    put = render_request_json("submit_task.request.vtl", submission("text.stats", params))
    put_small = render_request_json("submit_task.request.vtl", submission("text.stats", small))

    # Then the whole corpus (the long strings three times over) is too large to store; without them it lands
    assert not fits(params)
    assert_refused_as_too_large(put)
    assert json.loads(created_item(put_small)["params"]["S"]) == small


@pytest.mark.parametrize(
    "template", [t for t in REQUEST_TEMPLATES if t not in FUNCTION_REQUESTS and t not in PROFILE_REQUESTS]
)
def test_every_request_names_the_deployed_table(template: str):
    request = submission("text.stats", {"text": "x"}).model_copy(update={"path_params": {"taskId": "t-1"}})

    assert render_request_json(template, request)["TableName"] == TABLE_NAME


def test_the_profile_update_names_the_profiles_table_and_the_callers_key():
    update = render_request_json("update_profile.request.vtl", profile_update({"fullName": "A"}))

    assert update["TableName"] == PROFILES_TABLE
    assert update["Key"] == {"userId": {"S": USER}}
    assert update["UpdateExpression"] == "SET updatedAt = :now, fullName = :fullName"
    assert update["ExpressionAttributeValues"][":now"] == {"S": api_timestamp(EPOCH_MS)}


@pytest.mark.parametrize(
    "avatar",
    [f"users/{OTHER_USER}/a.png", f"users/{USER}/../{OTHER_USER}/a.png", f"users/{USER}/./a.png", f"users/{USER}/",
     f"users/{USER}x/a.png", f"users/{USER}/.."],
)  # fmt: skip
def test_an_avatar_outside_the_callers_prefix_is_refused_without_a_write(avatar: str):
    update = render_request_json("update_profile.request.vtl", profile_update({"avatar": avatar}))

    assert update["ConditionExpression"] == "attribute_exists(userId) AND attribute_not_exists(userId)"
    assert avatar not in json.dumps(update)


@pytest.mark.parametrize("avatar", [f"users/{USER}/a.png", f"users/{USER}/photos/2026/me..final.png"])
def test_an_avatar_under_the_callers_prefix_is_stored(avatar: str):
    update = render_request_json("update_profile.request.vtl", profile_update({"avatar": avatar}))

    assert "ConditionExpression" not in update
    assert update["ExpressionAttributeValues"][":avatar"] == {"S": avatar}


def test_submit_task_request_fills_a_queued_task_unless_one_has_its_id_and_another_body():
    put = render_request_json("submit_task.request.vtl", submission("text.stats", {"text": "x"}, key="k"))

    # Every attribute is set only if absent: a retry with the same body changes nothing
    assert put["UpdateExpression"] == "SET " + ", ".join(
        f"{name} = if_not_exists({name}, {value})" for name, value in SET_IF_ABSENT.findall(put["UpdateExpression"])
    )
    # The condition holds for a new id, or for the same owner, type and params (else 422: submit_task.error.vtl)
    assert put["ConditionExpression"] == (
        "attribute_not_exists(taskId) OR (userId = :owner AND #type = :type AND params = :params)"
    )
    assert put["ReturnValues"] == "ALL_OLD"  # a duplicate's stored task (submit_task.response.vtl)
    assert put["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    assert created_item(put) == {
        "taskId": {"S": idempotent_task_id(USER, "k")},
        "userId": {"S": USER},
        "type": {"S": "text.stats"},
        "params": {"S": '{"text":"x"}'},
        "status": {"S": "QUEUED"},
        "progress": {"N": "0"},
        "attempt": {"N": "0"},
        "pendingShard": {"S": REQUEST_ID[-1]},
        "idempotencyKey": {"S": "k"},
        "createdAt": {"N": str(EPOCH_MS)},
    }


def test_submitted_tasks_spread_over_every_shard_of_the_pending_index():
    # The reconciler's index is keyed by pendingShard: with one key per status (status-createdAt), every new task
    # wrote into the one QUEUED partition, and a GSI partition that cannot take its writes throttles the table's
    # PutItem ("Understanding global secondary index (GSI) write throttling and back pressure in DynamoDB").
    draw = random.Random(9)
    shards = [
        created_item(
            render_request_json(
                "submit_task.request.vtl",
                submission("text.stats", {"text": "x"}).model_copy(
                    update={"request_id": str(uuid.UUID(int=draw.getrandbits(128), version=4))}
                ),
            )
        )["pendingShard"]["S"]
        for _ in range(320)
    ]

    assert set(shards) == set(PENDING_SHARDS), "every shard takes new tasks"
    assert max(shards.count(s) for s in PENDING_SHARDS) < 320 / 4, "no shard takes a quarter of them"


@pytest.mark.parametrize("request_id", ["-", "not-hex-Z", "ABCDEF"], ids=["one-char", "not-hex", "upper-case"])
def test_a_request_id_that_is_not_a_uuid_still_files_the_task_in_a_shard(request_id: str):
    # API Gateway's request id is a UUID; were it ever another text, the task must still be in a shard the
    # reconciler reads (a task in no shard would never be found if its start were lost).
    request = submission("text.stats", {"text": "x"}).model_copy(update={"request_id": request_id})
    put = render_request_json("submit_task.request.vtl", request)

    assert created_item(put)["pendingShard"]["S"] in PENDING_SHARDS


@pytest.mark.parametrize("key", [None, ""], ids=["no-header", "empty-header"])
def test_submit_task_request_without_idempotency_key_uses_the_request_id(key: str | None):
    put = render_request_json("submit_task.request.vtl", submission("text.stats", {"text": "x"}, key=key))

    assert created_item(put)["taskId"] == {"S": REQUEST_ID}
    assert "idempotencyKey" not in created_item(put)


# ASCII, non-ASCII (base64 of UTF-8), keys whose base64 has + and / (URL-safe: - and _), and a long one
RESPONSE_KEYS = ["order-42", "日本語 😀", "\xfb\xff", "?>?", HOSTILE["long-50k-hostile"]]


@pytest.mark.parametrize("value", RESPONSE_KEYS, ids=["ascii", "non-ascii", "plus-and-slash", "plus-slash-2", "long"])
def test_submit_task_response_names_the_task_the_request_stored(value: str):
    # Given a submission with a hostile Idempotency-Key
    request = submission("text.stats", {"text": "x"}, key=value)

    # When the UpdateItem created the task (no old attributes) and the response is rendered
    stored = render_request_json("submit_task.request.vtl", request)
    body, rendered = render_response_json("submit_task.response.vtl", request, {})

    # Then the client is told the id that was stored
    assert body == {"taskId": created_item(stored)["taskId"]["S"], "status": "QUEUED"}
    assert body["taskId"] == idempotent_task_id(USER, value)
    assert rendered.status_override is None


def test_cancel_task_request_only_cancels_the_callers_unfinished_task():
    update = render_request_json("cancel_task.request.vtl", a_request(method="DELETE"))

    assert update["ConditionExpression"] == "userId = :user AND #status IN (:queued, :running)"
    values = update["ExpressionAttributeValues"]
    assert values[":user"] == {"S": USER}
    assert values[":now"] == {"N": str(EPOCH_MS)}
    assert update["ReturnValuesOnConditionCheckFailure"] == "ALL_OLD"
    # A cancelled task is terminal: it leaves the reconciler's pending index.
    assert update["UpdateExpression"].endswith(" REMOVE pendingShard")


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("1", 1),
        ("9", 9),
        ("10", 10),
        ("99", 99),
        ("100", 100),
        ("0", 25),
        ("101", 25),
        ("007", 25),
        ("-1", 25),
        ("1e2", 25),
        ("2.5", 25),
        (" 5", 25),
        ("5\n", 25),
        ('5, "x": 1', 25),
        ("5}", 25),
        ("", 25),
    ],
)
def test_list_tasks_request_limit_is_a_number_from_1_to_100_or_25(limit: str, expected: int):
    request = a_request(resource_path="/tasks", path="/tasks", path_params={}, query={"limit": limit})

    query = render_request_json("list_tasks.request.vtl", request)

    assert query["Limit"] == expected


@pytest.mark.parametrize("query", [{}, {"status": "", "limit": ""}], ids=["none", "empty"])
def test_list_tasks_request_without_query_parameters_lists_everything_25_at_a_time(query: dict[str, str]):
    rendered = render_request_json(
        "list_tasks.request.vtl", a_request(resource_path="/tasks", path="/tasks", query=query)
    )

    assert rendered["IndexName"] == "userId-createdAt-v2"
    assert rendered["KeyConditionExpression"] == "userId = :user"
    assert rendered["ExpressionAttributeValues"] == {":user": {"S": USER}}
    assert "FilterExpression" not in rendered
    assert rendered["Limit"] == 25


# --------------------------------------------------------------------------------------------------
# Response templates
# --------------------------------------------------------------------------------------------------


def test_get_task_response_leaves_out_fields_the_item_does_not_have():
    item = dynamodb_item(status="QUEUED")
    del item["params"]

    body, _ = render_response_json("get_task.response.vtl", a_request(), {"Item": item})

    assert body == {
        "taskId": "t-1",
        "type": "text.stats",
        "status": "QUEUED",
        "progress": 40,
        "attempt": 2,
        "createdAt": "2023-11-14T22:13:20.123Z",
        "params": None,
    }


@pytest.mark.parametrize(
    "integration_body",
    [
        {},
        {"Item": dynamodb_item(userId=OTHER_USER)},
        {"Item": dynamodb_item(userId="")},
        {"Item": dynamodb_item(userId="$context.identity.user")},
        {"Item": dynamodb_item(userId=f"{USER} ")},
        {"Item": dynamodb_item(userId=USER.lower())},
        {"Item": hostile_item(HOSTILE["json-breakout"], user=OTHER_USER)},
    ],
    ids=[
        "missing",
        "other-user",
        "empty-owner",
        "owner-is-a-vtl-reference",
        "owner-with-space",
        "owner-other-case",
        "hostile",
    ],
)
def test_get_task_response_is_404_unless_the_item_is_the_callers(integration_body: dict[str, Any]):
    body, rendered = render_response_json("get_task.response.vtl", a_request(), integration_body)

    assert rendered.status_override == 404
    assert body == {"message": "task not found"}


def test_list_tasks_response_returns_every_hostile_item_verbatim():
    # Given a Query page of items, one per hostile string
    items = [hostile_item(value) for value in NON_EMPTY.values()]

    body, rendered = render_response_json(
        "list_tasks.response.vtl", a_request(), {"Items": items, "Count": len(items), "ScannedCount": len(items)}
    )

    assert body == {"tasks": [expected_listed_task(item) for item in items], "count": len(items)}
    assert rendered.status_override is None


@pytest.mark.parametrize("count", [0, 1, 2])
def test_list_tasks_response_counts_the_page(count: int):
    items = [dynamodb_item(taskId=f"t-{n}") for n in range(count)]

    body, _ = render_response_json("list_tasks.response.vtl", a_request(), {"Items": items, "Count": count})

    assert [task["taskId"] for task in body["tasks"]] == [f"t-{n}" for n in range(count)]
    assert body["count"] == count


@pytest.mark.parametrize(
    "item",
    [None, dynamodb_item(userId=OTHER_USER, status="QUEUED"), hostile_item(HOSTILE["json-breakout"], user=OTHER_USER)],
    ids=["missing", "other-user", "other-user-hostile"],
)
def test_cancel_task_error_is_404_when_the_task_is_not_the_callers(item: dict[str, Any] | None):
    error: dict[str, Any] = {"__type": CCF, "message": "The conditional request failed"}
    if item is not None:
        error["Item"] = item

    body, rendered = render_response_json("cancel_task.error.vtl", a_request(), error)

    assert rendered.status_override == 404
    assert body == {"message": "task not found"}


@pytest.mark.parametrize("status", FINISHED)
def test_cancel_task_error_is_409_for_the_callers_finished_task(status: str):
    error = {"__type": CCF, "message": "The conditional request failed", "Item": dynamodb_item(status=status)}

    body, rendered = render_response_json("cancel_task.error.vtl", a_request(), error)

    assert rendered.status_override == 409
    assert body == {"message": f"task is already {status}{CANCEL_REFUSED}"}


@pytest.mark.parametrize("status", ["QUEUED", "RUNNING", *FINISHED])
def test_submit_task_response_of_a_duplicate_returns_the_stored_status_verbatim(status: str):
    request = submission("text.stats", {"text": "x"}, key="k")
    old = {"Attributes": dynamodb_item(taskId=idempotent_task_id(USER, "k"), status=status)}

    body, rendered = render_response_json("submit_task.response.vtl", request, old)

    assert rendered.status_override is None
    assert body == {"taskId": idempotent_task_id(USER, "k"), "status": status, "duplicate": True}


@pytest.mark.parametrize("value", list(ESCAPED.values())[:8], ids=list(ESCAPED)[:8])
def test_submit_task_error_with_the_stored_item_is_422_naming_the_task(value: str):
    # Given the condition failed on a stored task: this key was used for another type or params
    error = {"__type": CCF, "message": "The conditional request failed", "Item": dynamodb_item(taskId=value)}

    body, rendered = render_response_json("submit_task.error.vtl", a_request(method="POST"), error)

    assert rendered.status_override == 422
    assert body == {
        "message": f"this Idempotency-Key was already used for task {value} with a different type or params: send "
        "the same body to get that task back, or use a new key for a new task"
    }


def test_submit_task_error_without_the_stored_item_is_the_size_refusal_413():
    # Given the refusal's condition failed (only the too-large refusal fails without a stored item)
    error = {"__type": CCF, "message": "The conditional request failed"}

    body, rendered = render_response_json("submit_task.error.vtl", a_request(method="POST"), error)

    # Then the client is told it is too large, and what to do
    assert rendered.status_override == 413
    assert body["message"].startswith(f"request too large: params may take at most {MAX_STORED_PARAMS_BYTES} bytes")
    assert "S3" in body["message"]


def test_service_error_is_json_asking_for_a_retry():
    body, rendered = render_response_json(
        "service_error.vtl", a_request(), {"__type": "ThrottlingException", "message": HOSTILE["json-breakout"]}
    )

    assert "Idempotency-Key" in body["message"]
    assert rendered.status_override is None


# --------------------------------------------------------------------------------------------------
# Round trip: what POST stores, GET returns
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", list(ESCAPED.values()), ids=list(ESCAPED))
def test_a_hostile_submission_reads_back_exactly_as_submitted(value: str):
    # Given a hostile submission stored by the POST template
    params = hostile_params(value if len(value) < 10_000 else value[:10_000])
    put = render_request_json("submit_task.request.vtl", submission(value, params, key=value))

    # When the stored item is read by the GET template
    body, rendered = render_response_json("get_task.response.vtl", a_request(), {"Item": created_item(put)})

    # Then the caller gets back exactly what they sent
    assert rendered.status_override is None
    assert body["type"] == value
    assert body["params"] == params
    assert body["idempotencyKey"] == value
    assert body["status"] == "QUEUED"


# --------------------------------------------------------------------------------------------------
# The owner: a stable principal (issue 9, defect 3)
# --------------------------------------------------------------------------------------------------

ACCOUNT = "123456789012"
ROLE_ID = "AROAEXAMPLECIROLE001"
ROLE_SESSIONS = ["botocore-session-1764582000", "botocore-session-1764585600", "alice@example.com"]


def assumed_role(session: str, role_id: str = ROLE_ID, role: str = "ci-deployer") -> dict[str, str]:
    """$context.identity of an assumed-role session, as API Gateway fills it (user = ROLEID:session)."""
    return {
        "user": f"{role_id}:{session}",
        "caller": f"{role_id}:{session}",
        "userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
    }


def iam_user(user_id: str = USER, name: str = "alice") -> dict[str, str]:
    return {"user": user_id, "caller": user_id, "userArn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "accountId": ACCOUNT}


def as_caller(request: ApiRequest, identity: dict[str, str]) -> ApiRequest:
    return request.model_copy(update={"identity": identity})


def list_request(**query: str) -> ApiRequest:
    return a_request(resource_path="/tasks", path="/tasks", path_params={}, query=query)


@pytest.mark.parametrize("session", ROLE_SESSIONS)
def test_every_session_of_a_role_submits_as_the_role(session: str):
    # Given the same role calling from a new session (its session name differs every time)
    request = as_caller(submission("text.stats", {"text": "x"}, key="order-42"), assumed_role(session))

    # When the submission is rendered
    put = render_request_json("submit_task.request.vtl", request)
    body, _ = render_response_json("submit_task.response.vtl", request, {})

    # Then the owner is the role's unique id, so the Idempotency-Key id is the same from every session
    assert created_item(put)["userId"] == {"S": ROLE_ID}
    assert created_item(put)["taskId"] == {"S": idempotent_task_id(ROLE_ID, "order-42")}
    assert body["taskId"] == created_item(put)["taskId"]["S"]


@pytest.mark.parametrize("session", ROLE_SESSIONS)
def test_every_session_of_a_role_reads_lists_and_cancels_the_roles_tasks(session: str):
    identity = assumed_role(session)
    item = dynamodb_item(userId=ROLE_ID, status="SUCCEEDED")

    got, got_rendered = render_response_json("get_task.response.vtl", as_caller(a_request(), identity), {"Item": item})
    query = render_request_json("list_tasks.request.vtl", as_caller(list_request(), identity))
    cancel = render_request_json("cancel_task.request.vtl", as_caller(a_request(method="DELETE"), identity))
    refused, refused_rendered = render_response_json(
        "cancel_task.error.vtl", as_caller(a_request(method="DELETE"), identity), {"__type": CCF, "Item": item}
    )

    assert got_rendered.status_override is None and got["taskId"] == "t-1"
    assert query["ExpressionAttributeValues"][":user"] == {"S": ROLE_ID}
    assert cancel["ExpressionAttributeValues"][":user"] == {"S": ROLE_ID}
    assert refused_rendered.status_override == 409, refused  # the role's own finished task, not "not found"


@pytest.mark.parametrize(
    "identity",
    [
        assumed_role("botocore-session-1", role_id="AROAEXAMPLEOTHERROLE"),
        iam_user(OTHER_USER, "mallory"),
        iam_user(f"{ROLE_ID}:botocore-session-1", "spoof"),  # an IAM user's id never has a colon: kept whole
        {"user": f"{ACCOUNT}:{ROLE_ID}", "userArn": f"arn:aws:sts::{ACCOUNT}:federated-user/{ROLE_ID}"},
    ],
    ids=["other-role", "iam-user", "user-arn-not-assumed-role", "federated-user"],
)
def test_another_principal_never_owns_the_roles_tasks(identity: dict[str, str]):
    item = dynamodb_item(userId=ROLE_ID, status="QUEUED")

    got, rendered = render_response_json("get_task.response.vtl", as_caller(a_request(), identity), {"Item": item})
    put = render_request_json("submit_task.request.vtl", as_caller(submission("t", {}, key="k"), identity))

    assert rendered.status_override == 404 and got == {"message": "task not found"}
    assert created_item(put)["userId"] != {"S": ROLE_ID}


def test_an_iam_user_owns_as_the_user_id():
    put = render_request_json("submit_task.request.vtl", as_caller(submission("t", {}), iam_user()))

    assert created_item(put)["userId"] == {"S": USER}


# --------------------------------------------------------------------------------------------------
# Throttling is a retryable 503 on every route (issue 9, defect 4)
# --------------------------------------------------------------------------------------------------

# DynamoDB's JSON protocol error types (the __type of its HTTP 400 answers).
THROTTLING_TYPES = [
    "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    "com.amazon.coral.availability#ThrottlingException",
    "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded",
]
ERROR_TEMPLATES = ["submit_task.error.vtl", "dynamodb.error.vtl", "cancel_task.error.vtl", "update_profile.error.vtl"]


@pytest.mark.parametrize("template", ERROR_TEMPLATES)
@pytest.mark.parametrize("error_type", THROTTLING_TYPES, ids=lambda t: t.rsplit("#", 1)[1])
def test_dynamodb_throttling_is_a_retryable_503(template: str, error_type: str):
    error = {"__type": error_type, "message": HOSTILE["json-breakout"]}

    body, rendered = render_response_json(template, a_request(), error)

    assert rendered.status_override == 503
    assert "retry" in body["message"]


@pytest.mark.parametrize("template", ERROR_TEMPLATES)
@pytest.mark.parametrize(
    "error_type", ["com.amazon.coral.validate#ValidationException", "ThrottlingExceptionNot", "x#Throttling"]
)
def test_other_400s_are_not_mistaken_for_throttling(template: str, error_type: str):
    _, rendered = render_response_json(template, a_request(), {"__type": error_type, "message": "m"})

    assert rendered.status_override != 503


# --------------------------------------------------------------------------------------------------
# The size bound at the edge (issue 9, defect 5)
# --------------------------------------------------------------------------------------------------


def params_of_size(size: int, char: str = "x") -> dict[str, str]:
    """{"a": "xxx..."} whose JSON text takes ``size`` UTF-16 units."""
    return {"a": char * (size - len(params_text({"a": ""})))}


def test_params_up_to_the_bound_are_stored_and_one_byte_more_is_refused():
    at_bound = params_of_size(MAX_STORED_PARAMS_BYTES)
    over = params_of_size(MAX_STORED_PARAMS_BYTES + 1)
    assert len(params_text(at_bound).encode()) == MAX_STORED_PARAMS_BYTES

    stored = render_request_json("submit_task.request.vtl", submission("t", at_bound))
    refused = render_request_json("submit_task.request.vtl", submission("t", over))

    assert json.loads(created_item(stored)["params"]["S"]) == at_bound
    assert_refused_as_too_large(refused)


@pytest.mark.parametrize(
    "char",
    ["é", "日", "😀", "\u2028", "\x00", "\ud800"],
    ids=["2-byte", "3-byte", "4-byte", "ls", "nul", "lone-surrogate"],
)
def test_whatever_the_characters_stored_params_never_exceed_the_bound_in_utf8(char: str):
    # Given params of non-ASCII characters just under and just over the bound the template computes
    for size in range(MAX_STORED_PARAMS_BYTES // 3 - 4, MAX_STORED_PARAMS_BYTES // 3 + 4):
        params = {"a": char * size}
        put = render_request_json("submit_task.request.vtl", submission("t", params))

        if "params" in created_item(put):
            # Then what DynamoDB stores (UTF-8; Java turns a lone surrogate into "?") fits the bound
            stored = created_item(put)["params"]["S"].encode("utf-8", "replace")
            assert len(stored) <= MAX_STORED_PARAMS_BYTES
        else:
            assert_refused_as_too_large(put)
            assert stored_size_bound(params_text(params)) > MAX_STORED_PARAMS_BYTES


def test_the_bound_leaves_room_for_every_later_write_under_the_item_limit():
    # "The maximum item size in DynamoDB is 400 KB" (DynamoDB developer guide, Service quotas: Items)
    from infra.constructs import api_limits as limits

    later = limits.STEP_FUNCTIONS_MAX_CAUSE_BYTES + limits.LATER_ATTRIBUTES_RESERVE_BYTES
    assert limits.DYNAMODB_ITEM_LIMIT_BYTES == 409_600
    assert MAX_STORED_PARAMS_BYTES + later <= limits.MOTO_ITEM_LIMIT_BYTES <= limits.DYNAMODB_ITEM_LIMIT_BYTES


# --------------------------------------------------------------------------------------------------
# Pagination (issue 9, defect 9)
# --------------------------------------------------------------------------------------------------

VALID_TOKENS = ["1700000000123.c0ffee00-1111-4222-8333-444455556666", "1.k-QUlEQUxPQ0FMQUxJQ0V8b3JkZXItNDI", "0.x"]


@pytest.mark.parametrize("token", VALID_TOKENS)
@pytest.mark.parametrize("status", ["", "FAILED"])
def test_a_next_token_starts_the_query_after_the_key_it_names(token: str, status: str):
    query = render_request_json("list_tasks.request.vtl", list_request(next=token, status=status))

    created_at, task_id = token.split(".", 1)
    assert query["ExclusiveStartKey"] == {
        "userId": {"S": USER},
        "createdAt": {"N": created_at},
        "taskId": {"S": task_id},
    }


def request_shape(document: Any) -> Any:
    """The JSON structure without the leaf values: what a token must never change."""
    if isinstance(document, dict):
        return {key: request_shape(value) for key, value in document.items()}
    if isinstance(document, list):
        return [request_shape(value) for value in document]
    return type(document).__name__


HOSTILE_TOKENS = {
    **{label: HOSTILE[label] for label in ["double-quote", "single-quote", "backslash", "json-breakout", "emoji"]},
    **{label: HOSTILE[label] for label in ["vtl-set", "template-placeholders", "long-50k-hostile"]},
    "valid-then-breakout": '1.x"},"Limit":1000,"x":{"S":"',
    "valid-then-newline": "1.x\n",
    "number-breakout": '1"}, "userId": {"S": "AIDAEXAMPLEMALLORY"}, "x": {"N": "1.x',
    "another-owner-key": '1.x","userId":{"S":"AIDAEXAMPLEMALLORY',
    "no-dot": "1700000000123",
    "no-id": "1700000000123.",
    "negative": "-1.x",
    "exponent": "1e5.x",
    "too-long-number": "1" * 17 + ".x",
    "too-long-id": "1." + "x" * 1501,
    "unicode-digits": "١٢٣.x",
    "space": "1. x",
}


@pytest.mark.parametrize("token", list(HOSTILE_TOKENS.values()), ids=list(HOSTILE_TOKENS))
def test_a_hostile_next_token_never_changes_the_rendered_request_and_is_a_400(token: str):
    # Given a list request whose next token is anything but a token the API issued
    request = list_request(next=token, status="FAILED", limit="10")

    # When the Query request and its answer are rendered
    query = render_request_json("list_tasks.request.vtl", request)
    body, rendered = render_response_json("list_tasks.response.vtl", request, {"Items": [], "Count": 0})

    # Then the request has exactly the structure of a first page (the token reached nothing), and the answer is 400
    assert request_shape(query) == request_shape(
        render_request_json("list_tasks.request.vtl", list_request(status="FAILED", limit="10"))
    )
    assert "ExclusiveStartKey" not in query
    assert rendered.status_override == 400
    assert body["message"].startswith("invalid next token")


@pytest.mark.parametrize("token", VALID_TOKENS)
def test_a_page_that_stopped_early_carries_next_and_next_reads_on(token: str):
    created_at, task_id = token.split(".", 1)
    last = {"taskId": {"S": task_id}, "userId": {"S": USER}, "createdAt": {"N": created_at}}

    page, _ = render_response_json(
        "list_tasks.response.vtl", list_request(), {"Items": [], "Count": 0, "LastEvaluatedKey": last}
    )
    query = render_request_json("list_tasks.request.vtl", list_request(next=page["next"]))

    assert page == {"tasks": [], "count": 0, "next": token}
    assert query["ExclusiveStartKey"] == last


def test_the_last_page_has_no_next():
    page, _ = render_response_json("list_tasks.response.vtl", list_request(), {"Items": [dynamodb_item()], "Count": 1})

    assert "next" not in page


# --------------------------------------------------------------------------------------------------
# Every escaped value, one table: where a template copies a value into a JSON string, it lands exactly
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One field a template fills from a caller's or DynamoDB's value: render it, and say what must come out."""

    template: str
    render: Callable[[str], Any]
    expected: Callable[[str], Any]


def _submitted(value: str, *, key: str | None = None, user: str = USER, params: Any = None) -> dict[str, Any]:
    put = render_request_json("submit_task.request.vtl", submission(value, params or {"t": 1}, key=key, user=user))
    return created_item(put)


def _listed(request: ApiRequest) -> dict[str, Any]:
    return render_request_json("list_tasks.request.vtl", request)


def _filtered_by(request: ApiRequest) -> list[Any]:
    query = _listed(request)
    return [query["FilterExpression"], query["ExpressionAttributeValues"][":status"]]


def _owners_in(request: ApiRequest) -> list[Any]:
    query = _listed(request)
    return [query["ExpressionAttributeValues"][":user"], query["ExclusiveStartKey"]["userId"]]


def _answer(template: str, integration_body: Any, request: ApiRequest | None = None) -> tuple[Any, int | None]:
    body, rendered = render_response_json(template, request or a_request(), integration_body)
    return body, rendered.status_override


def _validation_error(value: str) -> dict[str, str]:
    return {"__type": "com.amazon.coral.validate#ValidationException", "message": value}


FIELDS: dict[str, Field] = {
    "submit-type": Field("submit_task.request.vtl", lambda v: _submitted(v)["type"], lambda v: {"S": v}),
    "submit-params": Field(
        "submit_task.request.vtl",
        lambda v: json.loads(_submitted("t", params=hostile_params(v))["params"]["S"]),
        hostile_params,
    ),
    "submit-idempotency-key": Field(
        "submit_task.request.vtl",
        lambda v: [_submitted("t", key=v)[name] for name in ("idempotencyKey", "taskId")],
        lambda v: [{"S": v}, {"S": idempotent_task_id(USER, v)}],
    ),
    "submit-owner": Field(
        "submit_task.request.vtl",
        lambda v: [_submitted("t", key="k", user=v)[name] for name in ("userId", "taskId")],
        lambda v: [{"S": v}, {"S": idempotent_task_id(v, "k")}],
    ),
    "get-task-id": Field(
        "get_task.request.vtl",
        lambda v: render_request_json("get_task.request.vtl", a_request(path_params={"taskId": v}))["Key"],
        lambda v: {"taskId": {"S": v}},
    ),
    "cancel-task-id": Field(
        "cancel_task.request.vtl",
        lambda v: render_request_json("cancel_task.request.vtl", a_request(path_params={"taskId": v}))["Key"],
        lambda v: {"taskId": {"S": v}},
    ),
    "cancel-owner": Field(
        "cancel_task.request.vtl",
        lambda v: render_request_json("cancel_task.request.vtl", a_request(identity={"user": v}))[
            "ExpressionAttributeValues"
        ][":user"],
        lambda v: {"S": v},
    ),
    "list-status": Field(
        "list_tasks.request.vtl",
        lambda v: _filtered_by(list_request(status=v)),
        lambda v: ["#status = :status", {"S": v}],
    ),
    "list-owner": Field(  # in the key condition and in the start key of a next page
        "list_tasks.request.vtl",
        lambda v: _owners_in(list_request(next="1.x").model_copy(update={"identity": {"user": v}})),
        lambda v: [{"S": v}, {"S": v}],
    ),
    "get-task-item": Field(
        "get_task.response.vtl",
        lambda v: _answer("get_task.response.vtl", {"Item": hostile_item(v)}),
        lambda v: (expected_task(hostile_item(v)), None),
    ),
    "list-tasks-items": Field(
        "list_tasks.response.vtl",
        lambda v: _answer("list_tasks.response.vtl", {"Items": [dynamodb_item(), hostile_item(v)], "Count": 2}),
        lambda v: (
            {"tasks": [expected_listed_task(dynamodb_item()), expected_listed_task(hostile_item(v))], "count": 2},
            None,
        ),
    ),
    "list-tasks-next": Field(
        "list_tasks.response.vtl",
        lambda v: _answer(
            "list_tasks.response.vtl",
            {"Items": [], "Count": 0, "LastEvaluatedKey": {"taskId": {"S": v}, "createdAt": {"N": "17"}}},
        ),
        lambda v: ({"tasks": [], "count": 0, "next": f"17.{v}"}, None),
    ),
    "cancel-task-attributes": Field(
        "cancel_task.response.vtl",
        lambda v: _answer("cancel_task.response.vtl", {"Attributes": dynamodb_item(taskId=v, status="CANCELLED")}),
        lambda v: ({"taskId": v, "status": "CANCELLED"}, None),
    ),
    "cancel-refused-status": Field(
        "cancel_task.error.vtl",
        lambda v: _answer("cancel_task.error.vtl", {"__type": CCF, "Item": dynamodb_item(status=v)}),
        lambda v: ({"message": f"task is already {v}{CANCEL_REFUSED}"}, 409),
    ),
    "submit-reused-key-task": Field(
        "submit_task.error.vtl",
        lambda v: _answer("submit_task.error.vtl", {"__type": CCF, "Item": dynamodb_item(taskId=v, status=v)}),
        lambda v: (
            {
                "message": f"this Idempotency-Key was already used for task {v} with a different type or params: "
                "send the same body to get that task back, or use a new key for a new task"
            },
            422,
        ),
    ),
    "submit-duplicate-status": Field(
        "submit_task.response.vtl",
        lambda v: _answer("submit_task.response.vtl", {"Attributes": dynamodb_item(taskId="t-1", status=v)}),
        lambda v: ({"taskId": REQUEST_ID, "status": v, "duplicate": True}, None),
    ),
    "result-task-id": Field(
        "read_result.request.vtl",
        lambda v: render_request_json("read_result.request.vtl", a_request(path_params={"taskId": v}))["taskId"],
        lambda v: v,
    ),
    "result-owner": Field(
        "read_result.request.vtl",
        lambda v: render_request_json("read_result.request.vtl", a_request(identity={"user": v}))["owner"],
        lambda v: v,
    ),
    "me-owner": Field(
        "read_me.request.vtl",
        lambda v: render_request_json("read_me.request.vtl", a_request(identity={"user": v}))["owner"],
        lambda v: v,
    ),
    "me-owner-arn": Field(
        "read_me.request.vtl",
        lambda v: render_request_json("read_me.request.vtl", a_request(identity={"user": USER, "userArn": v}))[
            "ownerArn"
        ],
        lambda v: v,
    ),
    "profile-owner": Field(
        "update_profile.request.vtl",
        lambda v: render_request_json("update_profile.request.vtl", profile_update({"fullName": "A"}, user=v))["Key"],
        lambda v: {"userId": {"S": v}},
    ),
    "profile-full-name": Field(
        "update_profile.request.vtl",
        lambda v: render_request_json("update_profile.request.vtl", profile_update({"fullName": v}))[
            "ExpressionAttributeValues"
        ][":fullName"],
        lambda v: {"S": v},
    ),
    "profile-avatar": Field(
        "update_profile.request.vtl",
        lambda v: render_request_json("update_profile.request.vtl", profile_update({"avatar": f"users/{USER}/a{v}"}))[
            "ExpressionAttributeValues"
        ][":avatar"],
        lambda v: {"S": f"users/{USER}/a{v}"},
    ),
    "profile-preferences": Field(
        "update_profile.request.vtl",
        lambda v: json.loads(
            render_request_json("update_profile.request.vtl", profile_update({"preferences": {"theme": v, v: [v]}}))[
                "ExpressionAttributeValues"
            ][":preferences"]["S"]
        ),
        lambda v: {"theme": v, v: [v]},
    ),
    "profile-stored": Field(
        "update_profile.response.vtl",
        lambda v: _answer(
            "update_profile.response.vtl",
            {
                "Attributes": {
                    **dynamodb_item(userId=v, fullName=v, avatar=v, lastLogin=v, updatedAt=v),
                    "preferences": {"S": json.dumps({"theme": v})},
                }
            },
        ),
        lambda v: (
            {"userId": v, "fullName": v, "avatar": v, "lastLogin": v, "updatedAt": v, "preferences": {"theme": v}},
            None,
        ),
    ),
    "profile-refused-owner": Field(
        "update_profile.error.vtl",
        lambda v: _answer("update_profile.error.vtl", {"__type": CCF}, a_request(identity={"user": v})),
        lambda v: (
            {"message": f"avatar must be a key under your own prefix users/{v}/ (no '.' or '..' segments)"},
            400,
        ),
    ),
    **{
        f"error-message-{template.split('.')[0]}": Field(
            template,
            lambda v, template=template: _answer(template, _validation_error(v)),
            lambda v: ({"message": v}, None),
        )
        for template in [
            "dynamodb.error.vtl",
            "cancel_task.error.vtl",
            "submit_task.error.vtl",
            "update_profile.error.vtl",
        ]
    },
}


def field_cases() -> list[Any]:
    cases = []
    for name, field in FIELDS.items():
        for label, value in ESCAPED.items():
            if name == "submit-params" and not fits(hostile_params(value)):
                continue  # refused as too large (the size tests below): its escaping is never reached
            cases.append(pytest.param(field, value, id=f"{name}-{label}"))
    return cases


@pytest.mark.parametrize(("field", "value"), field_cases())
def test_a_value_the_template_escapes_lands_exactly(field: Field, value: str):
    # Given a request or DynamoDB answer carrying the value in the one field this row targets
    # When the template renders it (strict JSON: no broken string, no duplicate key)
    # Then the field holds exactly the value (and the answer has the status the row states)
    assert field.render(value) == field.expected(value)


def test_every_template_that_escapes_a_value_has_a_row():
    escaping = {
        name
        for name in [*REQUEST_TEMPLATES, *RESPONSE_TEMPLATES]
        if "escapeJavaScript" in load_template(name, TABLE_NAME)
    }

    assert escaping == {field.template for field in FIELDS.values()}


# --------------------------------------------------------------------------------------------------
# One timestamp format (docs/DECISIONS.md "Timestamps")
# --------------------------------------------------------------------------------------------------

CALENDAR_EDGES_MS = [
    1_000,  # 1970-01-01T00:00:01
    951_782_400_000,  # 2000-02-29 (a leap day of a century divisible by 400)
    4_107_542_399_999,  # 2100-02-28T23:59:59.999 (2100 is not a leap year)
    1_709_251_199_999,  # 2024-02-29T23:59:59.999
    1_735_689_599_999,  # 2024-12-31T23:59:59.999
    EPOCH_MS,
    253_402_300_799_999,  # 9999-12-31T23:59:59.999
]


def _rendered_time(include: str, variable: str, value: str) -> str:
    """The ``$iso`` an include sets (the includes of timestamps include nothing themselves)."""
    text = f'#set(${variable} = "{value}")\n' + (TEMPLATES_DIR / include).read_text() + "\n[$iso]"
    return render_response(text, a_request(), "{}").body.strip()


@pytest.mark.parametrize(
    "epoch_ms", [*CALENDAR_EDGES_MS, *random.Random(13).sample(range(1_000, 253_402_300_800_000), 200)]
)
def test_epoch_milliseconds_render_as_rfc3339_utc_with_milliseconds(epoch_ms: int):
    rendered = _rendered_time("epoch_ms_time.vtl", "epochMs", str(epoch_ms))

    expected = (
        dt.datetime.fromtimestamp(epoch_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"
    )
    assert rendered == f"[{expected}]" == f"[{api_timestamp(epoch_ms)}]"
    assert re.fullmatch(TIMESTAMP_PATTERN, rendered[1:-1])


@pytest.mark.parametrize("not_a_number", ["", "12", "-1700000000123", "1700000000123.5", "1e12", "abc"])
def test_a_stored_number_the_templates_cannot_read_renders_no_time(not_a_number: str):
    assert _rendered_time("epoch_ms_time.vtl", "epochMs", not_a_number) == "[]"


@pytest.mark.parametrize(
    ("stored", "answered"),
    [
        ("2026-12-01T15:34:22.123456+00:00", "2026-12-01T15:34:22.123Z"),  # moto's $$.State.EnteredTime
        ("2026-12-01T15:34:22.123Z", "2026-12-01T15:34:22.123Z"),  # AWS's EnteredTime, the functions' _now()
        ("2026-12-01T15:34:22Z", "2026-12-01T15:34:22.000Z"),
        ("2026-12-01T15:34:22+00:00", "2026-12-01T15:34:22.000Z"),
        ("2026-12-01T15:34:22.1Z", "2026-12-01T15:34:22.100Z"),
        ("2026-12-01T15:34:22.987654321Z", "2026-12-01T15:34:22.987Z"),
        ("2026-12-01T15:34:22.123+02:00", "2026-12-01T15:34:22.123+02:00"),  # not UTC: left as stored
        ("yesterday", "yesterday"),
    ],
)
def test_stored_iso_times_render_as_rfc3339_utc_with_milliseconds(stored: str, answered: str):
    assert _rendered_time("iso_time.vtl", "isoText", stored) == f"[{answered}]"
    assert normalised_time(stored) == answered


def test_every_timestamp_of_a_task_has_the_documented_format():
    # Given an item as the API, the workflow (moto's EnteredTime) and the functions store it
    item = dynamodb_item(
        status="CANCELLED",
        startedAt="2026-12-01T15:34:22.123456+00:00",
        updatedAt="2026-12-01T15:34:23.5Z",
        finishedAt="2026-12-01T15:34:24.000Z",
    )
    item["cancelledAt"] = {"N": "1764603265432"}

    body, _ = render_response_json("get_task.response.vtl", a_request(), {"Item": item})

    assert {name: body[name] for name in TIMESTAMP_FIELDS} == {
        "createdAt": "2023-11-14T22:13:20.123Z",
        "startedAt": "2026-12-01T15:34:22.123Z",
        "updatedAt": "2026-12-01T15:34:23.500Z",
        "finishedAt": "2026-12-01T15:34:24.000Z",
        "cancelledAt": "2025-12-01T15:34:25.432Z",
    }


# --------------------------------------------------------------------------------------------------
# GET /tasks/{taskId}/result (a Lambda custom integration: docs/DECISIONS.md "The result endpoint")
# --------------------------------------------------------------------------------------------------


def test_the_result_request_hands_the_function_the_task_id_and_the_owner_by_the_owner_rule():
    role_session = a_request(
        path_params={"taskId": "t-1"},
        identity={
            "user": "AROAEXAMPLEROLE:botocore-session-1",
            "userArn": "arn:aws:sts::123456789012:assumed-role/ci/botocore-session-1",
        },
    )

    assert render_request_json("read_result.request.vtl", a_request(path_params={"taskId": "t-1"})) == {
        "taskId": "t-1",
        "owner": USER,
    }
    assert render_request_json("read_result.request.vtl", role_session)["owner"] == "AROAEXAMPLEROLE"


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"statusCode": 200, "body": {"taskId": "t-1", "type": "text.stats", "result": {"a": [1, '"x"']}}}, None),
        ({"statusCode": 404, "body": {"message": "task not found"}}, 404),
        ({"statusCode": 409, "body": {"message": "task t-1 is RUNNING: no result yet"}}, 409),
    ],
    ids=["200", "404", "409"],
)
def test_the_result_response_is_the_functions_body_with_its_status(answer: dict[str, Any], status: int | None):
    body, rendered = render_response_json("read_result.response.vtl", a_request(), answer)

    assert body == answer["body"]
    assert rendered.status_override == status


def test_a_function_error_is_a_retryable_answer_without_its_details():
    error = {"errorMessage": "boom: secret detail", "errorType": "KeyError", "stackTrace": ["..."]}

    body, _ = render_response_json("read_result.error.vtl", a_request(), error)

    assert body == {"message": "the result could not be read; retry after a short backoff"}
