"""Tests for taskrail.local.vtl: API Gateway mapping templates rendered as AWS renders them."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from infra.constructs.api import load_template
from taskrail.local.vtl import ApiRequest, RenderedResponse, VtlError, render_request, render_response

FIXTURES = Path(__file__).parent / "fixtures" / "vtl"
REQUEST_ID = "c0ffee00-1111-4222-8333-444455556666"
EPOCH_MS = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z


def a_request(**overrides: Any) -> ApiRequest:
    fields: dict[str, Any] = {
        "method": "POST",
        "resource_path": "/tasks/{taskId}",
        "path": "/tasks/t-1",
        "path_params": {"taskId": "t-1"},
        "query": {"limit": "10"},
        "headers": {"Content-Type": "application/json", "X-Api-Key": "k-123"},
        "body": "{}",
        "stage": "dev",
        "request_id": REQUEST_ID,
        "identity": {
            "user": "AIDAEXAMPLE",
            "userArn": "arn:aws:iam::123456789012:user/alice",
            "caller": "AIDAEXAMPLE",
            "accountId": "123456789012",
            "accessKey": "AKIAEXAMPLE",
            "sourceIp": "203.0.113.7",
            "userAgent": "curl/8.0",
            "cognitoIdentityId": "us-east-1:abc",
        },
        "authorizer": {"principalId": "alice", "claims": {"sub": "sub-1", "cognito:username": "alice"}},
        "stage_variables": {"table": "Tasks-dev"},
        "request_time_epoch_ms": EPOCH_MS,
    }
    fields.update(overrides)
    return ApiRequest(**fields)


def with_body(payload: Any, **overrides: Any) -> ApiRequest:
    return a_request(body=json.dumps(payload), **overrides)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# $context and $stageVariables
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$context.requestId", REQUEST_ID),
        ("$context.extendedRequestId", REQUEST_ID),
        ("$context.requestTimeEpoch", str(EPOCH_MS)),
        ("$context.requestTime", "14/Nov/2023:22:13:20 +0000"),
        ("$context.stage", "dev"),
        ("$context.httpMethod", "POST"),
        ("$context.resourcePath", "/tasks/{taskId}"),
        ("$context.path", "/dev/tasks/t-1"),
        ("$context.identity.user", "AIDAEXAMPLE"),
        ("$context.identity.userArn", "arn:aws:iam::123456789012:user/alice"),
        ("$context.identity.caller", "AIDAEXAMPLE"),
        ("$context.identity.accountId", "123456789012"),
        ("$context.identity.accessKey", "AKIAEXAMPLE"),
        ("$context.identity.sourceIp", "203.0.113.7"),
        ("$context.identity.userAgent", "curl/8.0"),
        ("$context.identity.cognitoIdentityId", "us-east-1:abc"),
        ("$context.authorizer.principalId", "alice"),
        ("$context.authorizer.claims.sub", "sub-1"),
        ("$context.authorizer.claims['cognito:username']", "alice"),
        ("$stageVariables.table", "Tasks-dev"),
        ("${stageVariables.table}", "Tasks-dev"),
    ],
)
def test_context_and_stage_variables_render_what_api_gateway_knows_about_the_request(template, expected):
    # Given a request with a known id, time, stage, identity and authorizer
    request = a_request()

    # When a template reads the context variable
    rendered = render_request(template, request)

    # Then it renders the value API Gateway would
    assert rendered == expected


def test_request_time_is_formatted_with_english_month_and_utc_offset():
    # Given a request made on the 5th of March, one second after midnight UTC
    request = a_request(request_time_epoch_ms=1_709_596_801_999)

    # When the request time is rendered
    rendered = render_request("$context.requestTime|$context.requestTimeEpoch", request)

    # Then it is in Common Log Format, and the epoch keeps its milliseconds
    assert rendered == "05/Mar/2024:00:00:01 +0000|1709596801999"


# --------------------------------------------------------------------------------------------------
# $input
# --------------------------------------------------------------------------------------------------


def test_input_body_is_the_raw_body_text():
    # Given a body that is not even JSON
    request = a_request(body="plain text, 'quoted' \"twice\" \\ #set($a = 1)")

    # When the template renders the body
    rendered = render_request("$input.body", request)

    # Then the raw text comes out unchanged
    assert rendered == request.body


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.a.b", '{"c":[1,2],"d":null}'),
        ("$.a.b.c", "[1,2]"),
        ("$.a.b.c[0]", "1"),
        ("$.name", '"O\'Brien \\"the\\" 😀"'),
        ("$.flag", "true"),
        ('$["a"]["b"]["d"]', "null"),
        ("$.tags[*]", '["x","y"]'),
        ("$", '{"a":{"b":{"c":[1,2],"d":null}},"name":"O\'Brien \\"the\\" 😀","flag":true,"tags":["x","y"]}'),
    ],
)
def test_input_json_renders_the_json_text_of_the_jsonpath_result(path, expected):
    # Given a JSON body
    request = with_body(
        {"a": {"b": {"c": [1, 2], "d": None}}, "name": 'O\'Brien "the" 😀', "flag": True, "tags": ["x", "y"]}
    )

    # When $input.json selects part of it
    rendered = render_request(f"$input.json('{path}')", request)

    # Then the result is JSON text (a string comes back quoted)
    assert rendered == expected
    assert json.loads(rendered) == json.loads(expected)


def test_input_json_of_a_path_that_matches_nothing_renders_empty():
    # Given a body without the field
    request = with_body({"a": 1})

    # When $input.json and $input.path select the missing field
    rendered = render_request("[$input.json('$.missing')][$input.path('$.missing')][$input.path('$.a.b')]", request)

    # Then both render as empty text
    assert rendered == "[][][]"


def test_input_path_returns_a_native_object_with_java_collection_methods():
    # Given a body with a nested object and a list of objects
    request = with_body(
        {"task": {"type": "csv.summary", "params": {"csv": "a\n1"}}, "items": [{"id": "a"}, {"id": "b"}]}
    )
    template = (
        "#set($task = $input.path('$.task'))"
        "$task.type|$task.get('type')|$task.params.csv.length()|$task.size()|$task.containsKey('params')"
        "|$task.containsKey('nope')|#foreach($key in $task.keySet())$key;#end"
        "|#foreach($item in $input.path('$.items'))$item.id#if($foreach.hasNext),#end#end"
        "|$input.path('$.items').size()|$input.path('$.items')[1].id|$input.path('$.items').get(0).id"
        "|$input.path('$.items[*].id')"
    )

    # When the template walks the object
    rendered = render_request(template, request)

    # Then maps, lists and strings answer like their Java counterparts
    assert rendered == 'csv.summary|csv.summary|3|2|true|false|type;params;|a,b|2|b|a|["a","b"]'


def test_input_path_values_render_as_api_gateway_renders_them():
    # Given a body with an object, a list, a number, a double and a boolean
    request = with_body({"obj": {"a": 1, "b": "x", "c": [1, {"d": 2}], "e": None}, "n": 7, "f": 1.5, "t": False})

    # When the template renders each value directly
    rendered = render_request(
        "$input.path('$.obj')|$input.path('$.obj.c')|$input.path('$.n')|$input.path('$.f')|$input.path('$.t')",
        request,
    )

    # Then objects render as Java maps, JSON lists as JSON text and scalars as Java prints them
    assert rendered == '{a=1, b=x, c=[1,{"d":2}], e=null}|[1,{"d":2}]|7|1.5|false'


def test_input_path_results_are_independent_copies_of_the_body():
    # Given a template that mutates what $input.path returned
    request = with_body({"task": {"type": "a"}})
    template = (
        "#set($t = $input.path('$.task'))#set($old = $t.put('type', 'changed'))$old>$t.type|$input.json('$.task')"
    )

    # When it renders
    rendered = render_request(template, request)

    # Then a later read of the body is not affected
    assert rendered == 'a>changed|{"type":"a"}'


def test_input_params_exposes_path_querystring_and_header_maps():
    # Given a request with path, query and header parameters
    request = a_request()
    template = (
        "$input.params().path.taskId|$input.params().querystring.get('limit')|$input.params().querystring.limit"
        "|$input.params().header.get('x-api-key')|$input.params().header.get('X-API-KEY')"
        "|#foreach($name in $input.params().header.keySet())$name;#end|$input.params().keySet()"
    )

    # When the template reads the parameter maps
    rendered = render_request(template, request)

    # Then each map holds its parameters, and header lookups ignore case (header names keep theirs)
    assert rendered == "t-1|10|10|k-123|k-123|Content-Type;X-Api-Key;|[path, querystring, header]"


@pytest.mark.parametrize(
    ("path_params", "query", "headers", "expected"),
    [
        ({"id": "from-path"}, {"id": "from-query"}, {"id": "from-header"}, "from-path"),
        ({}, {"id": "from-query"}, {"id": "from-header"}, "from-query"),
        ({}, {}, {"ID": "from-header"}, "from-header"),
        ({}, {"ID": "query-is-case-sensitive"}, {}, ""),
        ({}, {}, {}, ""),
    ],
)
def test_input_params_by_name_searches_path_then_query_string_then_headers(path_params, query, headers, expected):
    # Given a parameter that may be in the path, the query string and the headers
    request = a_request(path_params=path_params, query=query, headers=headers)

    # When the template asks for it by name
    rendered = render_request("$input.params('id')", request)

    # Then the first place that has it wins; a missing parameter is empty
    assert rendered == expected


# --------------------------------------------------------------------------------------------------
# $util
# --------------------------------------------------------------------------------------------------


def test_escape_javascript_escapes_like_aws_including_single_quotes():
    # Given a value with every kind of character escapeJavaScript treats specially
    value = "a'b\"c\\d/e\nf\tg\rh\bi\fj\x01k\x1fl\x7fm é 😀"
    request = with_body({"s": value})

    # When it is escaped, with and without AWS's documented remedy for the single quote
    escaped = render_request("$util.escapeJavaScript($input.path('$.s'))", request)
    remedied = render_request("""$util.escapeJavaScript($input.path('$.s')).replaceAll("\\\\'","'")""", request)

    # Then quotes, backslash, slash and control characters are escaped and the rest is \\uXXXX
    assert escaped == ("a\\'b\\\"c\\\\d\\/e\\nf\\tg\\rh\\bi\\fj\\u0001k\\u001Fl\x7fm \\u00E9 \\uD83D\\uDE00")
    # and only the remedied text is a valid JSON string body, decoding to exactly the input
    with pytest.raises(json.JSONDecodeError):
        json.loads(f'"{escaped}"')
    assert json.loads(f'"{remedied}"') == value


def test_escape_javascript_of_a_missing_value_renders_empty():
    # Given a body without the field
    request = with_body({})

    # When the missing value is escaped
    rendered = render_request("""[$util.escapeJavaScript($input.path('$.s')).replaceAll("\\\\'","'")]""", request)

    # Then nothing is rendered
    assert rendered == "[]"


def test_parse_json_and_to_json_convert_between_text_and_objects():
    # Given a body whose field holds JSON text
    request = with_body({"doc": json.dumps({"a": {"b": [1, "two"]}, "q": "it's"})})
    template = (
        "#set($doc = $util.parseJson($input.path('$.doc')))"
        "$doc.a.b.size()|$doc.a.b.get(1)|$doc.q|$util.toJson($doc)|$util.toJson($doc.a.b)"
    )

    # When the template parses and re-serialises it
    rendered = render_request(template, request)

    # Then parseJson gives a native object and toJson gives JSON text
    assert rendered == """2|two|it's|{"a":{"b":[1,"two"]},"q":"it's"}|[1,"two"]"""


def test_url_encode_and_decode_follow_java_url_encoder():
    # Given a value with spaces, reserved and non-ASCII characters
    request = with_body({"s": "a b&c=d/é*~+"})

    # When it is URL-encoded and decoded
    rendered = render_request(
        "$util.urlEncode($input.path('$.s'))|$util.urlDecode($util.urlEncode($input.path('$.s')))"
        "|$util.urlDecode('x+y%2Fz')",
        request,
    )

    # Then encoding matches java.net.URLEncoder (space is +, * stays, ~ is encoded) and decoding inverts it
    assert rendered == "a+b%26c%3Dd%2F%C3%A9*%7E%2B|a b&c=d/é*~+|x y/z"


def test_base64_encode_and_decode_round_trip_unicode_text():
    # Given a unicode value
    request = with_body({"s": "héllo 😀 'x'"})

    # When it is base64-encoded and decoded again
    rendered = render_request(
        "$util.base64Encode('é')|$util.base64Decode($util.base64Encode($input.path('$.s')))", request
    )

    # Then the encoding is of the UTF-8 bytes and the round trip is exact
    assert rendered == "w6k=|héllo 😀 'x'"


# --------------------------------------------------------------------------------------------------
# Java methods on values
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("$s.length()", "16"),
        ("$s.isEmpty()", "false"),
        ("$e.isEmpty()", "true"),
        ("$s.trim()", "Hello, World"),
        ("$s.trim().toLowerCase()", "hello, world"),
        ("$s.toUpperCase()", "  HELLO, WORLD  "),
        ("$s.contains('World')", "true"),
        ("$s.trim().startsWith('Hell')", "true"),
        ("$s.trim().endsWith('d')", "true"),
        ("$s.trim().equals('Hello, World')", "true"),
        ("$s.equals('hello')", "false"),
        ("$s.trim().equalsIgnoreCase('HELLO, WORLD')", "true"),
        ("$s.trim().substring(7)", "World"),
        ("$s.trim().substring(0, 5)", "Hello"),
        ("$s.indexOf('o')", "6"),
        ("$s.indexOf('z')", "-1"),
        ("$s.trim().charAt(1)", "e"),
        ("$s.replace('l', 'L')", "  HeLLo, WorLd  "),
        ("$s.trim().replaceAll('[aeiou]', '*')", "H*ll*, W*rld"),
        ("$s.trim().replaceAll('(\\w+), (\\w+)', '$2 $1')", "World Hello"),
        ("$s.trim().replaceAll('o', '\\$')", "Hell$, W$rld"),
        ("$s.trim().replaceFirst('l', 'L')", "HeLlo, World"),
        ("$s.trim().matches('[A-Za-z, ]+')", "true"),
        ("$s.matches('Hello')", "false"),
        ("$csv.split(',')", "[a, b, , c]"),
        ("$csv.split(',').size()", "4"),
        ("$csv.split(',', 2)", "[a, b,,c,,]"),
        ("$s.trim().concat('!')", "Hello, World!"),
        ("$n.toString().length()", "2"),
        ("$l.size()", "3"),
        ("$l.get(0)", "x"),
        ("$l.contains('y')", "true"),
        ("$l.isEmpty()", "false"),
        ("$m.size()", "2"),
        ("$m.get('k')", "v"),
        ("$m.containsKey('k')", "true"),
        ("$m.isEmpty()", "false"),
        ("$m.keySet()", "[k, size]"),
        ("#foreach($entry in $m.entrySet())$entry.key=$entry.value;#end", "k=v;size=99;"),
        ("#foreach($value in $m)$value;#end", "v;99;"),
    ],
)
def test_java_methods_work_on_template_values(expression, expected):
    # Given strings, a number, a list and a map (with a key named like a method) from the body
    request = with_body(
        {
            "s": "  Hello, World  ",
            "e": "",
            "csv": "a,b,,c,,",
            "n": 42,
            "l": ["x", "y", "z"],
            "m": {"k": "v", "size": 99},
        }
    )
    setup = "".join(f"#set(${name} = $input.path('$.{name}'))" for name in ("s", "e", "csv", "n", "l", "m"))

    # When the template calls the Java method
    rendered = render_request(setup + expression, request)

    # Then it behaves as the Java method does
    assert rendered == expected


def test_java_methods_work_on_template_literals_and_concatenations():
    # Given values built inside the template itself
    template = (
        "#set($k = \"Task#\" + $input.params('taskId'))"
        "$k.toLowerCase()|$k.length()|#set($l = [])#set($added = $l.add('a'))$added $l.size()"
        "|#set($m = {})#set($none = $m.put('a', 1))$m.containsKey('a') $m"
    )

    # When it renders
    rendered = render_request(template, a_request())

    # Then literals, concatenations, and collections made with #set have the same methods
    assert rendered == "task#t-1|8|true 1|true {a=1}"


def test_a_missing_map_key_never_falls_back_to_python_attributes():
    # Given a map without the keys "items", "keys", "values" or "pop"
    request = with_body({"m": {"a": 1}})

    # When a template reads those names as properties or calls unknown methods
    rendered = render_request(
        "[$input.path('$.m').items][$input.path('$.m').keys][$input.path('$.m').pop()][$input.body.split]"
        "[$input.body.__class__][$util.escapeJavaScript]",
        request,
    )

    # Then they are undefined, so they render empty
    assert rendered == "[][][][][][]"


# --------------------------------------------------------------------------------------------------
# References directly after '#', undefined references, #if
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("TASK#$context.requestId", f"TASK#{REQUEST_ID}"),
        ("USER#${context.identity.user}", "USER#AIDAEXAMPLE"),
        ('{"pk": {"S": "TASK#$input.params(\'taskId\')"}}', '{"pk": {"S": "TASK#t-1"}}'),
        ('#set($pk = "TASK#$context.stage")$pk|$pk.length()', "TASK#dev|8"),
        ('"#", "$context.stage"', '"#", "dev"'),
        ("a # $context.stage", "a # dev"),
        ("#$context.stage#", "#dev#"),
    ],
)
def test_a_reference_directly_after_hash_is_rendered(template, expected):
    # Given a template with a '#' right before a reference
    request = a_request()

    # When it renders
    rendered = render_request(template, request)

    # Then the reference is evaluated and the '#' is kept, as on AWS
    assert rendered == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{"color": "#ffffff", "tag": "#1", "x": "# y"}', '{"color": "#ffffff", "tag": "#1", "x": "# y"}'),
        ("a## a line comment\nb", "ab"),
        ("a#* a block comment *#b", "ab"),
        ("#set($s = 'TASK#$x')$s", "TASK#$x"),
        ("#", "#"),
    ],
)
def test_literal_hashes_and_comments_keep_their_velocity_meaning(template, expected):
    # Given '#' used as text, as comments and inside a single-quoted (non-interpolated) literal
    request = a_request()

    # When it renders
    rendered = render_request(template, request)

    # Then text stays text, comments disappear and single-quoted literals are not interpolated
    assert rendered == expected


@pytest.mark.parametrize(
    "template",
    [
        "$nothing",
        "$nothing.deeper",
        "$!nothing",
        "${nothing}",
        "$nothing.size()",
        "$context.nothing",
        "$context.identity.nothing",
        "$stageVariables.nothing",
        "$input.path('$.nothing')",
        "$input.path('$.s').nothing()",
        "$util.nothing('x')",
    ],
)
def test_undefined_references_render_as_empty_text(template):
    # Given a reference to something that does not exist
    request = with_body({"s": "x"})

    # When it renders
    rendered = render_request(f"[{template}]", request)

    # Then it renders as nothing (API Gateway is quiet about undefined references)
    assert rendered == "[]"


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("$nothing", "no"),
        ("!$nothing", "yes"),
        ("$input.path('$.missing')", "no"),
        ("!$input.path('$.missing')", "yes"),
        ("$input.path('$.present')", "yes"),
        ("$input.path('$.off')", "no"),
        ("$input.path('$.present') && !$nothing", "yes"),
        ("$input.path('$.n') > 2", "yes"),
        ("$input.params('taskId') == 't-1'", "yes"),
    ],
)
def test_if_treats_null_as_false(condition, expected):
    # Given a body with some fields
    request = with_body({"present": {"a": 1}, "off": False, "n": 3})

    # When a condition tests a missing or present value
    rendered = render_request(f"#if({condition})yes#{{else}}no#end", request)

    # Then null is false, as in Velocity
    assert rendered == expected


# --------------------------------------------------------------------------------------------------
# User-supplied values are data
# --------------------------------------------------------------------------------------------------

VTL_LOOKING_DATA = [
    "#set($a = 1)$a",
    "$util.escapeJavaScript('x')",
    "$util.urlEncode('x')",
    "${x}",
    "$context.requestId",
    "TASK#$context.requestId",
    "#if(true)yes#{else}no#end",
    "#foreach($i in [1..3])$i#end",
    "#macro(m)boom#end#m()",
    "#evaluate('$context.requestId')",
    "#stop",
    "## not a comment",
    "#* not a comment *#",
    "\\$context.requestId",
    "$input.body",
]


@pytest.mark.parametrize("value", VTL_LOOKING_DATA)
def test_vtl_in_user_data_is_never_evaluated(value):
    # Given VTL-looking text in the body, the query string, a path parameter and a header
    request = a_request(
        body=json.dumps({"type": value, "params": {"p": value}}),
        query={"q": value},
        path_params={"taskId": value},
        headers={"X-Value": value},
    )
    template = (
        "$input.path('$.type')\n$input.path('$.params').p\n$input.params('q')\n$input.params('taskId')\n"
        "$input.params().header.get('x-value')\n$util.parseJson($input.json('$.type'))\n"
        "$util.base64Decode($util.base64Encode($input.path('$.type')))"
    )

    # When the template renders those values
    rendered = render_request(template, request)

    # Then every value comes out verbatim
    assert rendered.split("\n") == [value] * 7
    # and the whole body passes through unchanged too
    assert render_request("$input.body", request) == request.body


# --------------------------------------------------------------------------------------------------
# The deployed submit request template (submit_task.request.vtl, an UpdateItem) with hostile values
# --------------------------------------------------------------------------------------------------

# Loaded as the stack deploys it: includes and the table name expanded (infra/constructs/api.py).
SUBMIT_TEMPLATE = load_template("submit_task.request.vtl", "T")

HOSTILE = [
    "",
    " ",
    "'",
    "''",
    '"',
    "\\",
    "\\'",
    "\\\\'",
    '\\"',
    'it\'s a "test" \\ / done',
    "line1\nline2\r\nline3\ttab",
    "\x00",
    "nul\x00in\x00the\x00middle",
    "".join(chr(code) for code in range(32)) + "\x7f",
    "\u2028\u2029",
    "é ñ ü ß 中文 العربية",
    "emoji 😀 👩‍👩‍👧 🏳️‍🌈 \U0001d518\U0001d52b\U0001d526",
    "rtl \u200f\u202eevil\u202c \u200e",
    "zero\u200bwidth\ufeffbom\uffff",
    "combining e\u0301",
    "#set($a=1)$a",
    "$util.urlEncode('x')",
    "${x}",
    "#if(true)x#end",
    "</script><script>alert(1)</script>",
    '"},"x":{"S":"',
    '{"S": "x"}',
    '{"N": "1"}}, "injected": {"S": "y',
    "\\u0027 \\n \\\\u0000",
    "%27 %22 %00 +",
    "$",
    "#",
    "#$",
    "\\$",
    "'" * 100_000,
    "\\" * 60_000,  # JSON doubles it: the params (twice over) stay under the stored-params bound
    ("'\"\\\n😀#$é" * 5_000),
]


def random_hostile_strings(seed: int, count: int) -> list[str]:
    """Strings mixing control characters, quotes, VTL and JSON syntax and non-ASCII text."""
    rng = random.Random(seed)
    alphabet = [chr(code) for code in range(0x80)] + list(
        "éÿĀ\u2028\u2029\u200f\u202e\u200b\ufeff\uffff中ع\u0301😀\U0001d518"
    )
    tokens = ["#set($a=1)", "$util.", "${x}", "#if(", "#end", "\\'", '\\"', '"},"x":{"S":"']
    tokens += ["$context.requestId", "#$", "##", "#*", "*#", "\r\n", "😀"]
    strings = []
    for _ in range(count):
        pieces = [rng.choice(tokens) if rng.random() < 0.3 else rng.choice(alphabet) for _ in range(rng.randint(0, 60))]
        strings.append("".join(pieces))
    strings.append("".join(rng.choice(alphabet) for _ in range(40_000)))  # twice in params: under the bound
    return strings


def put_item(value: str, *, ascii_body: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Render the submit template for a body carrying ``value``; return the DynamoDB request and params."""
    params = {"text": value, "nested": {"list": [value, 1, None, True, 2.5]}, value[:40]: "as a key"}
    request = a_request(body=json.dumps({"type": value, "params": params}, ensure_ascii=ascii_body))
    rendered = render_request(SUBMIT_TEMPLATE, request)
    return json.loads(rendered), params


def stored_item(update: dict[str, Any]) -> dict[str, Any]:
    """The item the UpdateItem creates: its Key, and each ``SET a = if_not_exists(a, :v)`` as a: :v's value."""
    names, values = update["ExpressionAttributeNames"], update["ExpressionAttributeValues"]
    pairs = re.findall(r"(#?\w+) = if_not_exists\(\1, (:\w+)\)", update["UpdateExpression"])
    return {**update["Key"], **{names.get(name, name): values[value] for name, value in pairs}}


def assert_stored_exactly(item: dict[str, Any], value: str, params: dict[str, Any]) -> None:
    assert item["taskId"] == {"S": REQUEST_ID}  # no Idempotency-Key
    assert item["userId"] == {"S": "AIDAEXAMPLE"}  # the IAM user's id
    assert item["status"] == {"S": "QUEUED"}
    assert item["type"]["S"].encode("utf-8") == value.encode("utf-8")
    assert json.loads(item["params"]["S"]) == params


@pytest.mark.parametrize("ascii_body", [True, False], ids=["ascii-escaped-body", "raw-utf8-body"])
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:20]) + (f"...({len(v)})" if len(v) > 20 else ""))
def test_put_item_template_stores_hostile_values_exactly(value, ascii_body):
    # Given a task whose type and params carry a hostile string
    # When the submit request template renders it
    dynamodb_request, params = put_item(value, ascii_body=ascii_body)

    # Then the output is valid JSON whose values decode to exactly the input
    assert dynamodb_request["TableName"] == "T"
    assert_stored_exactly(stored_item(dynamodb_request), value, params)


def test_put_item_template_stores_seeded_random_strings_exactly():
    # Given 300 seeded random strings made of troublesome characters and syntax (plus one of 40k chars)
    for value in random_hostile_strings(seed=20240521, count=300):
        # When the submit request template renders each one
        dynamodb_request, params = put_item(value, ascii_body=False)

        # Then each is stored exactly
        assert_stored_exactly(stored_item(dynamodb_request), value, params)


# --------------------------------------------------------------------------------------------------
# Response templates
# --------------------------------------------------------------------------------------------------


def an_item(task_id: str, task_type: str, params: Any) -> dict[str, Any]:
    return {"taskId": {"S": task_id}, "type": {"S": task_type}, "params": {"S": json.dumps(params)}}


def test_get_item_response_sets_status_404_when_the_item_is_missing():
    # Given DynamoDB answered GetItem with no Item
    request = a_request(method="GET", path_params={"taskId": "t-'404'"})

    # When the response template renders
    response = render_response(fixture("get_task.response.vtl"), request, "{}")

    # Then it overrides the status to 404 and says which task was not found
    assert response.status_override == 404
    assert json.loads(response.body) == {"message": "task not found", "taskId": "t-'404'"}


def test_get_item_response_keeps_the_status_when_the_item_exists():
    # Given DynamoDB answered GetItem with an Item holding hostile values
    value = 'it\'s "odd" \\ 😀 #set($a=1) ${x}'
    request = a_request(method="GET")
    integration_body = json.dumps({"Item": an_item("t-1", value, {"text": value})})

    # When the response template renders
    response = render_response(fixture("get_task.response.vtl"), request, integration_body)

    # Then there is no override and the item comes back exactly
    assert response == RenderedResponse(body=response.body, status_override=None, header_overrides={})
    assert json.loads(response.body) == {"taskId": "t-1", "type": value, "params": {"text": value}}


@pytest.mark.parametrize(
    "template",
    [
        "#if($input.path('$').toString().contains(\"Item\"))found"
        "#{else}#set($context.responseOverride.status = 404)#end",
        "#if($input.path('$.Item') == $null || $input.path('$.Item').isEmpty())"
        "#set($context.responseOverride.status = '404')#{else}found#end",
    ],
)
def test_other_missing_item_idioms_set_status_404(template):
    # Given an empty GetItem answer and one with an item
    request = a_request(method="GET")

    # When each idiom renders both answers
    missing = render_response(template, request, "{}")
    found = render_response(template, request, json.dumps({"Item": an_item("t-1", "x", {})}))

    # Then only the missing item gets the 404
    assert (missing.status_override, missing.body) == (404, "")
    assert (found.status_override, found.body) == (None, "found")


def test_response_override_headers_are_returned():
    # Given a response template that sets headers and a status
    template = (
        "#set($context.responseOverride.header.Location = \"/tasks/$input.path('$.id')\")"
        "#set($context.responseOverride.header.X-Count = $input.path('$.n'))"
        "#set($context.responseOverride.status = 201)"
        "$context.responseOverride.status"
    )

    # When it renders
    response = render_response(template, a_request(), json.dumps({"id": "t-9", "n": 3}))

    # Then the overrides come back (values as text) and are readable inside the template
    assert response == RenderedResponse(
        body="201", status_override=201, header_overrides={"Location": "/tasks/t-9", "X-Count": "3"}
    )


def test_response_input_is_the_integration_body_while_params_stay_the_method_requests():
    # Given a method request with its own body and parameters
    request = a_request(body=json.dumps({"from": "request"}))

    # When a response template reads $input
    response = render_response(
        "$input.path('$.from')|$input.params('taskId')|$input.body",
        request,
        json.dumps({"from": "integration"}),
    )

    # Then body reads the integration response while params still read the method request
    assert response.body == 'integration|t-1|{"from": "integration"}'


@pytest.mark.parametrize("count", [0, 1, 3])
def test_list_response_builds_a_json_array_with_foreach(count):
    # Given a Query answer with some items whose values are hostile
    values = [HOSTILE[index] for index in (3, 12, 27)][:count]
    items = [an_item(f"t-{index}", value, {}) for index, value in enumerate(values)]
    integration_body = json.dumps({"Items": items, "Count": count})

    # When the list response template renders
    response = render_response(fixture("list_tasks.response.vtl"), a_request(method="GET"), integration_body)

    # Then the output is a JSON array with each item, values intact
    assert json.loads(response.body) == {
        "tasks": [{"taskId": f"t-{index}", "type": value} for index, value in enumerate(values)],
        "count": count,
    }
    assert response.status_override is None


# --------------------------------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "request_body", "message"),
    [
        ("#if($x", "{}", "does not parse"),
        ("#set($x = )", "{}", "does not parse"),
        ("$input.path('$.a')", "not json", "not JSON"),
        ("$input.json('$.items[?(@.id)]')", "{}", "unsupported JSONPath"),
        ("$input.path('$.s').substring(5)", '{"s": "abc"}', "mapping template failed"),
        ("#include('other.vtl')", "{}", "mapping template failed"),
    ],
)
def test_broken_templates_and_unreadable_bodies_raise_vtl_error(template, request_body, message):
    # Given a template or body that API Gateway could not transform
    request = a_request(body=request_body)

    # When it renders
    # Then a VtlError says why (the emulator answers 500, as API Gateway does)
    with pytest.raises(VtlError, match=message):
        render_request(template, request)


def test_an_invalid_status_override_raises_vtl_error():
    # Given a response template that sets a status that is not an HTTP status code
    template = "#set($context.responseOverride.status = 'teapot')"

    # When it renders
    # Then it fails instead of sending a nonsense status
    with pytest.raises(VtlError, match="status"):
        render_response(template, a_request(), "{}")


def test_the_process_wide_airspeed_module_is_left_untouched():
    # Given taskrail.local.vtl has been imported (and patched its private copy of airspeed)
    import airspeed

    # When another part of the process renders with airspeed directly
    rendered = airspeed.Template("#if($missing)stock#end|TASK#$x").merge({"x": "1"})

    # Then it still gets airspeed's own behaviour
    assert rendered == "stock|TASK#$x"


def test_an_empty_body_matches_no_jsonpath_and_reads_as_an_empty_object():
    # Given a request without a body
    request = a_request(body="")

    # When a template reads it
    rendered = render_request("[$input.body][$input.json('$')][$input.path('$')]", request)

    # Then no JSONPath matches, and $input.body is "{}" as AWS renders it (tests/parity/apigateway: test_vtl_semantics)
    assert rendered == "[{}][][]"


@pytest.mark.parametrize(
    ("text", "units"),
    [("abc", 3), ("é", 1), ("日本", 2), ("😀", 2), ("a😀b", 4), ("👨\u200d👩", 5), ("", 0)],
)
def test_string_length_counts_utf16_units_as_java_does(text: str, units: int):
    # Java's String.length() is the number of UTF-16 code units: a character beyond the BMP is two
    # (https://docs.oracle.com/javase/8/docs/api/java/lang/String.html#length--). The API's size bound relies on it.
    rendered = render_request("#set($t = $input.path('$.t'))$t.length()", with_body({"t": text}))

    assert rendered == str(units)


def test_the_airspeed_touch_point_is_the_pinned_library_and_refuses_another():
    # taskrail.local.vtl_engine is the only module that touches airspeed-ext: each patch checks the code it replaces
    import importlib.metadata
    import tomllib

    from taskrail.local import vtl, vtl_engine

    pins = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"airspeed-ext=={vtl_engine.AIRSPEED_EXT_VERSION}" in pins
    assert importlib.metadata.version("airspeed-ext") == vtl_engine.AIRSPEED_EXT_VERSION
    changed = vtl_engine.load_engine(vtl.SEMANTICS)  # a fresh private copy, patched: loading it again works
    changed.Text.PLAIN = re.compile("changed upstream")
    with pytest.raises(ImportError, match=r"Text\.PLAIN"):
        vtl_engine.patch_engine(changed, vtl.SEMANTICS)
