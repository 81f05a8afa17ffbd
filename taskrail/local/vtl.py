"""Render API Gateway (REST API) mapping templates locally, the way AWS API Gateway renders them.

The local API Gateway emulator renders the *same* template files that deploy to AWS (AWS service
integrations to DynamoDB) with :func:`render_request` and :func:`render_response`. Templates are Apache
Velocity (VTL); the engine is ``airspeed-ext`` (pinned) plus API Gateway's objects and a few fixes.

Public API
----------
``ApiRequest``                what API Gateway knows about the method request.
``render_request(template, request) -> str``
``render_integration_request(template, request) -> RenderedRequest``
    The rendered body and the ``$context.requestOverride`` the template set (``header``, ``path``,
    ``querystring``).
``render_response(template, request, integration_body, request_override=None) -> RenderedResponse``
    In a response template ``$input`` refers to the integration response body; ``$input.params()`` still
    refers to the method request; ``$context.requestOverride`` holds what the request template set (as AWS
    shows it to a MOCK integration's response template). ``#set($context.responseOverride.status = 404)`` and
    ``#set($context.responseOverride.header.Name = "v")`` come back as ``status_override`` /
    ``header_overrides``. An override set twice in one template is a ``VtlError`` (AWS: "Overrides are final.
    An override may only be applied to each parameter once [...] API Gateway returns a 5XX response").
``VtlError``                  a template that does not parse or fails while rendering (the emulator answers
                              500, as API Gateway does for a failed transformation).

What templates see
------------------
``$input.body``               the raw body text; ``{}`` when there is none (as AWS renders it).
``$input.json('$.a.b')``      JSON text of the JSONPath result (a string comes back quoted).
``$input.path('$.a')``        the native value: maps (``.get``, ``.size()``, ``.keySet()``, nested ``.a.b``),
                              lists (``#foreach``, ``.size()``, ``[0]``), strings, numbers, booleans.
``$input.params()``           ``{path, querystring, header}``; the header map is case-insensitive.
``$input.params('name')``     path, then query string, then header (case-insensitive); "" when absent.
``$util``                     ``escapeJavaScript``, ``parseJson``, ``toJson``, ``urlEncode``, ``urlDecode``,
                              ``base64Encode``, ``base64Decode``.
``$context``                  ``accountId``, ``domainName`` (the Host header), ``domainPrefix``, ``protocol``,
                              ``requestId``, ``extendedRequestId``, ``requestTime``, ``requestTimeEpoch``,
                              ``stage``, ``httpMethod``, ``resourcePath``, ``path`` (``/{stage}{path}``, as
                              AWS reports it), ``identity.*``, ``authorizer.*``, ``responseOverride.*``,
                              ``requestOverride.*`` (kept for the response template; not applied to
                              the integration request of an AWS service integration).
``$stageVariables.x``
Java methods on values        String: ``length isEmpty contains startsWith endsWith equals
                              equalsIgnoreCase toLowerCase toUpperCase trim strip substring indexOf
                              lastIndexOf charAt replace replaceAll replaceFirst matches split concat
                              toString``; List: ``size isEmpty get contains add set indexOf addAll
                              toString``; Map: ``get containsKey containsValue keySet values entrySet size
                              isEmpty put putAll remove toString``; numbers: ``intValue longValue
                              doubleValue toString equals``. ``replaceAll``, ``replaceFirst``, ``matches``
                              and ``split`` take Java regexes and Java replacement strings (``$1``,
                              ``${name}``, ``\\$``).

``$util.escapeJavaScript`` follows Apache Commons Lang's ``StringEscapeUtils.escapeJavaScript``, which
behaves as AWS documents (``'`` becomes ``\\'``): ``\\`` ``"`` ``'`` ``/`` are backslash-escaped,
``\\b \\t \\n \\f \\r`` by name, other control characters and every non-ASCII character as ``\\uXXXX``
(upper-case hex, UTF-16, so an emoji becomes a surrogate pair). ``\\'`` is not valid JSON; AWS's documented
remedy ``.replaceAll("\\\\'", "'")`` after it restores valid JSON, and the value decodes to exactly the input.

What airspeed-ext 0.6.9 lacks, and how it is supplied
-----------------------------------------------------
The fixes live in a *private copy* of ``airspeed.operators`` (loaded from the installed file under another
module name by :mod:`taskrail.local.vtl_engine`, the only module that touches airspeed), so the process-wide
``airspeed`` module stays untouched. Each patch checks
that the code it replaces is what it expects and fails at import time otherwise (re-check after an upgrade):

* ``#`` directly before a reference: airspeed's plain-text rule swallows ``#`` together with any following
  run of punctuation *including* ``$`` (``TASK#$context.requestId``, ``"#", "$x"``, ``#${x}`` stay literal).
  The rule is narrowed so that the run stops before ``$`` and ``\\``. This is the root-cause version of the
  "marker" work-around LocalStack uses: nothing is inserted into the template, so no marker can leak into
  values a template computes (``"TASK#$id".length()``) and nothing is stripped from the output (so user data
  that happens to contain a marker string is never altered). Single-quoted literals (``'#$x'``) stay literal.
* ``#if($missing)`` was *true* and ``#if(!$missing)`` *false* (airspeed maps a null condition to true).
  Null is false, as in Velocity.
* Member access used Python attributes of builtins: ``$map.items`` rendered ``<built-in method items ...>``,
  ``$str.split(...)`` was Python's literal split, ``$map.size()`` called a *data* value when the JSON object
  had a ``size`` key, and ``toLowerCase``/``trim``/``isEmpty``/``equals``/``containsKey``/``size``... were
  missing. Member access on strings, lists, maps, numbers and booleans now goes only through the Java method
  tables below (a method call never reads data; a property reads only map keys); host objects (``$input``,
  ``$util``) expose their public methods. Unknown members render as empty text.
* Values render with Java's ``toString``: maps ``{a=1, b=x}``, lists ``[1, a]``, lists that come from JSON
  (``$input.path``, ``$util.parseJson``) as compact JSON (as observed on AWS), booleans ``true``, doubles
  ``1.0E20``. airspeed rendered Python reprs (``{'a': 1}``).
* ``"a" + $n`` concatenates (Velocity), instead of raising ``TypeError``.
* ``#foreach($v in $map)`` iterates the map's *values* (Velocity); airspeed iterated keys.

Unchanged airspeed behaviour that already matches API Gateway: undefined references (``$x``, ``$x.y``,
``$!x``, ``${x}``, a method on null) render as empty text; ``#set``, ``#foreach`` with ``$foreach.hasNext``,
``#define``, ``#macro``; string literals are not backslash-unescaped.

User data is data: it only enters through ``$input``/``$util``/``$context`` calls, which return values; only
the template text is parsed, so a body containing ``#set(...)``, ``$util...``, ``${x}`` or ``$context...``
is rendered verbatim (proved in tests/local/test_vtl.py).

Known deviations from AWS
-------------------------
* Truthiness: ``""``, ``0``, empty lists and maps are false in ``#if`` (airspeed/Python). Velocity 1.7 treats
  only null and ``false`` as false, Velocity 2 (``directive.if.empty_check``) also empty values and zero; no AWS
  page or recorded response says which API Gateway runs, so this is unverified (docs/LOCAL-FIDELITY.md).
  ``==`` between different types is Python's (``"1" == 1`` is false; Velocity compares the strings).
* JSONPath is a subset: ``$``, ``.name``, ``['name']``, ``[n]`` (negative allowed), ``[*]``, ``.*``,
  ``..name``, ``..*``; a path without ``$`` is taken as ``$.path`` (as Jayway does). Filters, slices, unions
  and functions raise ``VtlError``. A definite path that matches nothing gives null (renders empty) for
  ``$input.path`` and empty text for ``$input.json`` (believed to match AWS, not verified on AWS); wildcard
  paths give a list. An empty body matches nothing (``$input.json('$')`` is empty text: unverified, the sources
  disagree; ``$input.body`` is ``{}``, which is recorded).
* ``escapeJavaScript`` escaping ``/`` and non-ASCII characters is Commons Lang behaviour, not verified on
  AWS; either way the JSON-decoded value is identical.
* ``$input.json`` emits compact JSON with non-ASCII characters unescaped; AWS's exact whitespace/escaping of
  JSON text may differ (the parsed value is the same).
* Java regexes are run by Python's ``re``: the common syntax is identical, ``(?<name>...)`` is translated;
  ``\\p{...}`` classes and ``\\Q...\\E`` are not supported.
* Integer ``/`` floors like Python (Java truncates toward zero for negative operands); ``/`` on doubles is
  integer division (an airspeed behaviour).
* ``$util.base64Decode`` decodes the bytes as UTF-8 with U+FFFD for malformed sequences (like Java's
  ``new String(bytes, UTF_8)``); ``$util.toJson`` is not documented for API Gateway (it is AppSync's) and
  is provided for convenience.
* ``$context`` holds only the variables listed above (``apiId``, ``resourceId``, ``identity.apiKey``... render
  empty: the local API has no API Gateway ids).
* ``#include``/``#parse`` have no loader and raise ``VtlError``.
* ``length()`` counts UTF-16 code units, as Java does (an emoji is 2); the indices of ``substring``,
  ``indexOf``, ``lastIndexOf`` and ``charAt`` count code points, so they differ from Java's beyond the BMP.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import json
import math
import operator
import re
import time
import uuid
from collections.abc import Callable, Iterable, KeysView, Mapping, ValuesView
from decimal import Decimal
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from pydantic import BaseModel, ConfigDict, Field

from taskrail.local import vtl_engine

__all__ = [
    "ApiRequest",
    "RenderedRequest",
    "RenderedResponse",
    "VtlError",
    "render_integration_request",
    "render_request",
    "render_response",
]


class VtlError(Exception):
    """A mapping template failed to parse or to render (API Gateway answers 500)."""


class ApiRequest(BaseModel):
    """What API Gateway knows about the method request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: str
    resource_path: str = Field(description='the resource template, e.g. "/tasks/{taskId}"')
    path: str = Field(description='the request path after the stage, e.g. "/tasks/abc"')
    path_params: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict, description="looked up case-insensitively")
    body: str = ""
    stage: str = "local"
    request_id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    identity: dict[str, str | None] = Field(default_factory=dict)
    account_id: str = Field(default="", description="the API owner's account: $context.accountId")
    authorizer: dict[str, Any] = Field(default_factory=dict, description="e.g. principalId, claims")
    stage_variables: dict[str, str] = Field(default_factory=dict)
    request_time_epoch_ms: int = Field(default_factory=lambda: time.time_ns() // 1_000_000)
    #: more ``$context`` variables, over the REST ones: a WebSocket API's connectionId, routeKey, eventType, ...
    extra_context: dict[str, Any] = Field(default_factory=dict)


class RenderedRequest(BaseModel):
    """A rendered integration-request template and the ``$context.requestOverride`` it set."""

    model_config = ConfigDict(frozen=True)

    body: str
    request_override: dict[str, dict[str, str]] = Field(default_factory=dict)


class RenderedResponse(BaseModel):
    """A rendered integration-response template and the overrides it set on ``$context``."""

    model_config = ConfigDict(frozen=True)

    body: str
    status_override: int | None = None
    header_overrides: dict[str, str] = Field(default_factory=dict)


def render_request(template: str, request: ApiRequest) -> str:
    """Render an integration-request template; ``$input`` is the method request."""
    return render_integration_request(template, request).body


def render_integration_request(template: str, request: ApiRequest) -> RenderedRequest:
    """Render an integration-request template; also return the ``$context.requestOverride`` it set."""
    context = _context(request)
    body = _render(template, _namespace(request, request.body, context))
    override = context["requestOverride"]
    return RenderedRequest(
        body=body,
        request_override={
            kind: {_java_str(k): _java_str(v) for k, v in values.items() if v is not None}
            for kind, values in override.items()
            if isinstance(values, Mapping)
        },
    )


def render_response(
    template: str,
    request: ApiRequest,
    integration_body: str,
    request_override: Mapping[str, Mapping[str, str]] | None = None,
) -> RenderedResponse:
    """Render an integration-response template; ``$input`` is the integration response body and
    ``$context.requestOverride`` what the request template set (``request_override``)."""
    context = _context(request, request_override)
    body = _render(template, _namespace(request, integration_body, context))
    override = context.get("responseOverride")
    if not isinstance(override, Mapping):
        override = {}
    headers = override.get("header")
    return RenderedResponse(
        body=body,
        status_override=_status_override(override.get("status")),
        header_overrides={
            _java_str(name): _java_str(value)
            for name, value in (headers.items() if isinstance(headers, Mapping) else ())
            if value is not None
        },
    )


# --------------------------------------------------------------------------------------------------
# Values as templates see them
# --------------------------------------------------------------------------------------------------


class _JsonList(list):
    """A list that came from JSON (``$input.path``, ``$util.parseJson``): renders as JSON text."""


class _HeaderMap(dict):
    """API Gateway's header map: keys keep their case, lookups ignore it."""

    def _key(self, key: Any) -> Any:
        if dict.__contains__(self, key) or not isinstance(key, str):
            return key
        folded = key.lower()
        return next((k for k in self if isinstance(k, str) and k.lower() == folded), key)

    def __getitem__(self, key: Any) -> Any:
        return dict.__getitem__(self, self._key(key))

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, self._key(key))

    def get(self, key: Any, default: Any = None) -> Any:
        return dict.get(self, self._key(key), default)


class _Entry:
    """A ``Map.Entry`` from ``entrySet()``: ``$e.key``, ``$e.value``, ``$e.getKey()``, ``$e.getValue()``."""

    def __init__(self, key: Any, value: Any) -> None:
        self.key = key
        self.value = value

    def getKey(self) -> Any:
        return self.key

    def getValue(self) -> Any:
        return self.value

    def __str__(self) -> str:
        return f"{_java_str(self.key)}={_java_str(self.value)}"


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return _JsonList(_from_json(item) for item in value)
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid JSON value {name}")


def _parse_json(text: str) -> Any:
    return _from_json(json.loads(text, parse_constant=_reject_constant))


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_java_str, allow_nan=False)


def _java_double(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    mantissa = f"{text[0]}.{text[1:] or '0'}"
    return f"{'-' if sign else ''}{mantissa}E{exponent + len(text) - 1}"


def _map_to_string(value: Mapping[Any, Any]) -> str:
    return "{" + ", ".join(f"{_java_str(k)}={_java_str(v)}" for k, v in value.items()) + "}"


def _list_to_string(value: Iterable[Any]) -> str:
    return "[" + ", ".join(_java_str(item) for item in value) + "]"


_TO_STRING: tuple[tuple[type | tuple[type, ...], Callable[[Any], str]], ...] = (
    (str, str),
    (bool, lambda value: "true" if value else "false"),
    (float, _java_double),
    (int, str),
    (_JsonList, _json_text),
    (Mapping, _map_to_string),
    ((list, tuple, set, frozenset, range, KeysView, ValuesView), _list_to_string),
)


def _java_str(value: Any) -> str:
    """Java's ``String.valueOf``: how Velocity renders a value."""
    if value is None:
        return "null"
    for types, to_string in _TO_STRING:
        if isinstance(value, types):
            return to_string(value)
    return str(value)


def _truthy(value: Any) -> bool:
    return value is not None and bool(value)


# --------------------------------------------------------------------------------------------------
# Java regexes and replacement strings
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _java_regex(regex: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\(\?<(?=[A-Za-z])", "(?P<", regex))


def _group_reference(replacement: str, index: int, groups: int) -> tuple[int | str, int]:
    """Parse a ``$n`` / ``${name}`` reference at ``replacement[index]`` (just after ``$``)."""
    if index < len(replacement) and replacement[index] == "{":
        end = replacement.find("}", index)
        if end < 0:
            raise ValueError("named capturing group is missing trailing '}'")
        return replacement[index + 1 : end], end + 1
    if index >= len(replacement) or not replacement[index].isdigit():
        raise ValueError("Illegal group reference")
    number, index = int(replacement[index]), index + 1
    while index < len(replacement) and replacement[index].isdigit():
        longer = number * 10 + int(replacement[index])
        if longer > groups:
            break
        number, index = longer, index + 1
    if number > groups:
        raise IndexError(f"No group {number}")
    return number, index


@functools.lru_cache(maxsize=256)
def _java_replacement(replacement: str, groups: int) -> tuple[str | tuple[int | str], ...]:
    """Split a Java replacement string into literal text and ``(group,)`` references."""
    parts: list[str | tuple[int | str]] = []
    literal: list[str] = []
    index = 0
    while index < len(replacement):
        char = replacement[index]
        if char == "\\":
            if index + 1 >= len(replacement):
                raise ValueError("character to be escaped is missing")
            literal.append(replacement[index + 1])
            index += 2
        elif char == "$":
            parts.append("".join(literal))
            literal = []
            group, index = _group_reference(replacement, index + 1, groups)
            parts.append((group,))
        else:
            literal.append(char)
            index += 1
    parts.append("".join(literal))
    return tuple(parts)


def _replacer(pattern: re.Pattern[str], replacement: Any) -> Callable[[re.Match[str]], str]:
    parts = _java_replacement(_java_str(replacement), pattern.groups)

    def replace(match: re.Match[str]) -> str:
        return "".join(part if isinstance(part, str) else (match.group(part[0]) or "") for part in parts)

    return replace


def _replace_all(text: str, regex: Any, replacement: Any) -> str:
    pattern = _java_regex(_java_str(regex))
    return pattern.sub(_replacer(pattern, replacement), text)


def _replace_first(text: str, regex: Any, replacement: Any) -> str:
    pattern = _java_regex(_java_str(regex))
    return pattern.sub(_replacer(pattern, replacement), text, count=1)


def _split(text: str, regex: Any, limit: int = 0) -> list[str]:
    """Java's ``String.split(regex, limit)``."""
    parts: list[str] = []
    start = 0
    for match in _java_regex(_java_str(regex)).finditer(text):
        if 0 < limit <= len(parts) + 1:
            break
        if match.end() == 0:
            continue  # a zero-width match at the beginning never yields a leading empty string
        parts.append(text[start : match.start()])
        start = match.end()
    if not parts:
        return [text]
    parts.append(text[start:])
    while limit == 0 and parts and not parts[-1]:
        parts.pop()
    return parts


def _java_trim(text: str) -> str:
    return text.strip("".join(chr(code) for code in range(33)))


def _substring(text: str, begin: int, end: int | None = None) -> str:
    end = len(text) if end is None else end
    if begin < 0 or end > len(text) or begin > end:
        raise IndexError(f"begin {begin}, end {end}, length {len(text)}")
    return text[begin:end]


def _char_at(text: str, index: int) -> str:
    if not 0 <= index < len(text):
        raise IndexError(f"index {index}, length {len(text)}")
    return text[index]


# --------------------------------------------------------------------------------------------------
# Java method tables: the one place where String / List / Map / Number methods are defined
# --------------------------------------------------------------------------------------------------

_COMMON_METHODS: dict[str, Callable[..., Any]] = {
    "toString": _java_str,
    "equals": lambda value, other: value == other,
}

_STRING_METHODS: dict[str, Callable[..., Any]] = {
    **_COMMON_METHODS,
    "length": lambda text: len(text.encode("utf-16-le", "surrogatepass")) // 2,  # Java counts UTF-16 units
    "isEmpty": lambda text: not text,
    "contains": lambda text, part: _java_str(part) in text,
    "startsWith": lambda text, prefix, offset=0: text.startswith(_java_str(prefix), offset),
    "endsWith": lambda text, suffix: text.endswith(_java_str(suffix)),
    "equals": lambda text, other: isinstance(other, str) and text == other,
    "equalsIgnoreCase": lambda text, other: isinstance(other, str) and text.lower() == other.lower(),
    "toLowerCase": str.lower,
    "toUpperCase": str.upper,
    "trim": _java_trim,
    "strip": str.strip,
    "substring": _substring,
    "indexOf": lambda text, part, start=0: text.find(_java_str(part), start),
    "lastIndexOf": lambda text, part: text.rfind(_java_str(part)),
    "charAt": _char_at,
    "replace": lambda text, old, new: text.replace(_java_str(old), _java_str(new)),
    "replaceAll": _replace_all,
    "replaceFirst": _replace_first,
    "matches": lambda text, regex: _java_regex(_java_str(regex)).fullmatch(text) is not None,
    "split": _split,
    "concat": lambda text, other: text + _java_str(other),
}


def _list_add(items: list[Any], value: Any) -> bool:
    items.append(value)
    return True


def _list_set(items: list[Any], index: int, value: Any) -> Any:
    previous = items[index]
    items[index] = value
    return previous


def _list_index_of(items: list[Any], value: Any) -> int:
    return items.index(value) if value in items else -1


_LIST_METHODS: dict[str, Callable[..., Any]] = {
    **_COMMON_METHODS,
    "size": len,
    "isEmpty": lambda items: not items,
    "get": lambda items, index: items[index],
    "contains": lambda items, value: value in items,
    "add": _list_add,
    "addAll": lambda items, values: items.extend(values) or True,
    "set": _list_set,
    "indexOf": _list_index_of,
}


def _map_put(mapping: dict[Any, Any], key: Any, value: Any) -> Any:
    previous = mapping.get(key)
    mapping[key] = value
    return previous


_MAP_METHODS: dict[str, Callable[..., Any]] = {
    **_COMMON_METHODS,
    "get": lambda mapping, key: mapping.get(key),
    "containsKey": lambda mapping, key: key in mapping,
    "containsValue": lambda mapping, value: value in mapping.values(),
    "keySet": lambda mapping: list(mapping.keys()),
    "values": lambda mapping: list(mapping.values()),
    "entrySet": lambda mapping: [_Entry(key, value) for key, value in mapping.items()],
    "size": len,
    "isEmpty": lambda mapping: not mapping,
    "put": _map_put,
    "putAll": lambda mapping, values: mapping.update(values),
    "remove": lambda mapping, key: mapping.pop(key, None),
}

_NUMBER_METHODS: dict[str, Callable[..., Any]] = {
    **_COMMON_METHODS,
    "intValue": int,
    "longValue": int,
    "doubleValue": float,
}

_METHOD_TABLES: tuple[tuple[type | tuple[type, ...], dict[str, Callable[..., Any]]], ...] = (
    (str, _STRING_METHODS),
    (Mapping, _MAP_METHODS),
    (list, _LIST_METHODS),
    (bool, _COMMON_METHODS),
    ((int, float), _NUMBER_METHODS),
)


def _java_methods(target: Any) -> dict[str, Callable[..., Any]] | None:
    for types, methods in _METHOD_TABLES:
        if isinstance(target, types):
            return methods
    return None


def _member(target: Any, name: str, is_call: bool) -> Any:
    """Resolve ``$target.name`` (a property) or ``$target.name(...)`` (returns the callable)."""
    methods = _java_methods(target)
    if methods is None:  # a host object ($input, $util, a map entry): its public attributes
        if target is None or name.startswith("_"):
            return None
        attribute = getattr(target, name, None)
        return attribute if callable(attribute) == is_call else None
    if is_call:
        method = methods.get(name)
        return None if method is None else functools.partial(method, target)
    return target.get(name) if isinstance(target, Mapping) else None


# --------------------------------------------------------------------------------------------------
# The engine: a private, patched copy of airspeed.operators (taskrail.local.vtl_engine, the only touch point)
# --------------------------------------------------------------------------------------------------


def _velocity_add(left: Any, right: Any) -> Any:
    if isinstance(left, str) or isinstance(right, str):
        return _java_str(left) + _java_str(right)
    return operator.add(left, right)


SEMANTICS = vtl_engine.Semantics(truthy=_truthy, member=_member, to_string=_java_str, add=_velocity_add)
_ENGINE = vtl_engine.load_engine(SEMANTICS)


@functools.lru_cache(maxsize=256)
def _compile(template: str) -> Any:
    compiled = _ENGINE.Template(template, filename="<mapping template>")
    try:
        compiled.ensure_compiled()
    except _ENGINE.TemplateError as error:
        raise VtlError(f"mapping template does not parse: {error}") from error
    return compiled


def _render(template: str, namespace: dict[str, Any]) -> str:
    compiled = _compile(template)
    try:
        return str(compiled.merge(namespace))
    except _ENGINE.TemplateError as error:
        raise VtlError(f"mapping template failed: {error}") from error


# --------------------------------------------------------------------------------------------------
# JSONPath (the subset mapping templates use)
# --------------------------------------------------------------------------------------------------

_MISSING = object()
_JSONPATH_STEP = re.compile(
    r"""\.\.(?P<deep>\*|[^.\[\]()?,:'"\s]+)
      | \.(?P<name>\*|[^.\[\]()?,:'"\s]+)
      | \[\s*(?P<quoted>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\s*\]
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*(?P<star>\*)\s*\]""",
    re.X,
)


@functools.lru_cache(maxsize=256)
def _jsonpath_steps(path: str) -> tuple[tuple[str, Any], ...]:
    path = path.strip()
    if not path.startswith("$"):
        path = "$" + ("" if path.startswith("[") else ".") + path
    steps: list[tuple[str, Any]] = []
    position = 1
    while position < len(path):
        match = _JSONPATH_STEP.match(path, position)
        if match is None:
            raise VtlError(f"unsupported JSONPath expression {path!r} at {path[position:]!r}")
        steps.append(_jsonpath_step(match))
        position = match.end()
    return tuple(steps)


def _jsonpath_step(match: re.Match[str]) -> tuple[str, Any]:
    if match["deep"] is not None:
        return ("deep", None if match["deep"] == "*" else match["deep"])
    if match["name"] is not None:
        return ("star", None) if match["name"] == "*" else ("name", match["name"])
    if match["quoted"] is not None:
        return ("name", re.sub(r"\\(.)", r"\1", match["quoted"][1:-1]))
    if match["index"] is not None:
        return ("index", int(match["index"]))
    return ("star", None)


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    return list(node) if isinstance(node, list) else []


def _descendants(node: Any) -> Iterable[Any]:
    yield node
    for child in _children(node):
        yield from _descendants(child)


def _has_child(node: Any, kind: str, arg: Any) -> bool:
    if kind == "name":
        return isinstance(node, dict) and arg in node
    return kind == "index" and isinstance(node, list) and -len(node) <= arg < len(node)


def _apply_step(nodes: list[Any], kind: str, arg: Any) -> list[Any]:
    found: list[Any] = []
    for node in nodes:
        if _has_child(node, kind, arg):
            found.append(node[arg])
        elif kind == "star":
            found.extend(_children(node))
        elif kind == "deep":
            for inner in _descendants(node):
                found.extend(_children(inner) if arg is None else _apply_step([inner], "name", arg))
    return found


def _jsonpath(document: Any, path: str) -> Any:
    """Jayway-style result: a definite path gives the value (or ``_MISSING``), others a list of matches."""
    steps = _jsonpath_steps(path)
    nodes = [document]
    for kind, arg in steps:
        nodes = _apply_step(nodes, kind, arg)
    if all(kind in {"name", "index"} for kind, _ in steps):
        return nodes[0] if nodes else _MISSING
    return _JsonList(nodes)


# --------------------------------------------------------------------------------------------------
# $input, $util, $context
# --------------------------------------------------------------------------------------------------


class _Input:
    """``$input``: the payload (request or integration response) plus the method request's parameters."""

    def __init__(self, body: str, request: ApiRequest) -> None:
        self._body = body
        self._request = request

    @property
    def body(self) -> str:
        # AWS renders an empty body as "{}" (LocalStack PR 12413, validated against AWS; any content type)
        return self._body or "{}"

    def _select(self, path: Any) -> Any:
        if not self._body.strip():
            return _MISSING
        try:
            document = _parse_json(self._body)  # parsed per call: each result is an independent object
        except ValueError as error:
            raise VtlError(f"the body is not JSON, so $input.path/json cannot read it: {error}") from error
        return _jsonpath(document, _java_str(path))

    def path(self, path: Any = "$") -> Any:
        value = self._select(path)
        return None if value is _MISSING else value

    def json(self, path: Any = "$") -> str:
        value = self._select(path)
        return "" if value is _MISSING else _json_text(value)

    def params(self, name: Any = None) -> Any:
        request = self._request
        if name is None:
            return {
                "path": dict(request.path_params),
                "querystring": dict(request.query),
                "header": _HeaderMap(request.headers),
            }
        key = _java_str(name)
        for source in (request.path_params, request.query, _HeaderMap(request.headers)):
            if key in source:
                return source[key]
        return ""

    def __str__(self) -> str:
        return self._body


_JS_NAMED_ESCAPES = {
    '"': '\\"',
    "'": "\\'",
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}
_JS_ESCAPED = re.compile("[\\x00-\\x1f\"'\\\\/\\u0080-\\U0010ffff]")


def _js_escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _JS_NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code > 0xFFFF:
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}"
    return f"\\u{code:04X}"


class _Util:
    """``$util`` as API Gateway defines it (plus ``toJson``)."""

    def escapeJavaScript(self, value: Any) -> str | None:
        return None if value is None else _JS_ESCAPED.sub(_js_escape, _java_str(value))

    def parseJson(self, text: Any) -> Any:
        return _parse_json(_java_str(text))

    def toJson(self, value: Any) -> str:
        return _json_text(value)

    def urlEncode(self, value: Any) -> str:
        """Java's ``URLEncoder.encode(s, "UTF-8")``: space is ``+``, ``*`` stays, ``~`` is encoded."""
        return quote_plus(_java_str(value), safe="*").replace("~", "%7E")

    def urlDecode(self, value: Any) -> str:
        return unquote_plus(_java_str(value))

    def base64Encode(self, value: Any) -> str:
        return base64.b64encode(_java_str(value).encode("utf-8")).decode("ascii")

    def base64Decode(self, value: Any) -> str:
        text = _java_str(value)
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except binascii.Error as error:
            raise ValueError(f"not base64: {error}") from error
        return raw.decode("utf-8", errors="replace")


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _request_time(epoch_ms: int) -> str:
    """``$context.requestTime``: CLF-formatted, e.g. ``09/Apr/2015:12:34:56 +0000``."""
    t = time.gmtime(epoch_ms // 1000)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year:04d}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


class _Override(dict):
    """A ``$context.*Override`` map: each parameter may be set once per template ("Overrides are final. An
    override may only be applied to each parameter once. If you try to override the same parameter multiple
    times, API Gateway returns a 5XX response": "Override your API's request and response parameters and
    status codes", API Gateway Developer Guide)."""

    def __init__(self, values: Mapping[Any, Any] | None = None) -> None:
        super().__init__(values or {})
        self._set: set[Any] = set()

    def __setitem__(self, key: Any, value: Any) -> None:
        if key in self._set:
            raise VtlError(f"$context override {_java_str(key)!r} set twice: overrides are final (AWS answers 5XX)")
        self._set.add(key)
        dict.__setitem__(self, key, value)


def _override_maps(request_override: Mapping[str, Mapping[str, str]] | None) -> dict[str, _Override]:
    carried = request_override or {}
    kinds = ("header", "path", "querystring")
    request = _Override({kind: _Override(carried.get(kind)) for kind in kinds})
    response = _Override({"header": _Override(), "status": None})
    return {"requestOverride": request, "responseOverride": response}


def _context(request: ApiRequest, request_override: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
    host = _HeaderMap(request.headers).get("Host") or ""
    return (
        {
            "accountId": request.account_id,
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "protocol": "HTTP/1.1",
            "requestId": request.request_id,
            "extendedRequestId": request.request_id,
            "requestTime": _request_time(request.request_time_epoch_ms),
            "requestTimeEpoch": request.request_time_epoch_ms,
            "stage": request.stage,
            "httpMethod": request.method,
            "resourcePath": request.resource_path,
            "path": f"/{request.stage}{request.path}",
            "identity": dict(request.identity),
            "authorizer": copy.deepcopy(request.authorizer),
        }
        | _override_maps(request_override)
        | copy.deepcopy(request.extra_context)
    )


def _namespace(request: ApiRequest, body: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "input": _Input(body, request),
        "util": _Util(),
        "context": context,
        "stageVariables": dict(request.stage_variables),
    }


def _status_override(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not re.fullmatch(r"\s*\d{3}\s*", _java_str(value)):
        raise VtlError(f"$context.responseOverride.status must be an HTTP status code, got {value!r}")
    return int(_java_str(value))
