"""No API response is cached unless its cache key holds the caller's identity (issue 16 §3, docs/DECISIONS.md
"No cache in front of the read routes").

API Gateway's stage cache answers a hit "by looking up the endpoint response from the cache instead of making a
request to your endpoint" (API Gateway Developer Guide, "Cache settings for REST APIs in API Gateway"), and keys it
on the method's ``CacheKeyParameters``, which must be among the method's request parameters (path, query string,
header; API Gateway API Reference, Integration.cacheKeyParameters). The owner of a task is ``$context.identity``
(owner.vtl), not a request parameter: under IAM authorization no request parameter names the caller steadily (a
SigV4 ``Authorization`` header differs on every request), so on this API no cache key can hold the caller, and a
cached read would answer one user with what another was answered. The guard below fails the build if any stage or
method turns caching on for a method whose cache key lacks the caller.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from taskrail.local.vtl import ApiRequest, render_request

JSON = "application/json"
# Request parameters that name the caller, by authorization type: only a token an authorizer has checked is steady
# per caller. Under AWS_IAM there is none.
IDENTITY_KEY_PARAMETERS: dict[str, frozenset[str]] = {
    "AWS_IAM": frozenset(),
    "CUSTOM": frozenset({"method.request.header.Authorization"}),
    "COGNITO_USER_POOLS": frozenset({"method.request.header.Authorization"}),
}
READ_ROUTES = ("GET /tasks/{taskId}", "GET /tasks", "GET /tasks/{taskId}/result")


def _text(value: Any) -> str:
    """A template string, its Fn::Join tokens as ``<token>``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_text(part) if isinstance(part, str | dict) else "" for part in parts)
    return "<token>"


def _resource_paths(template: dict[str, Any]) -> dict[str, str]:
    resources = template["Resources"]

    def path(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if isinstance(parent, dict) and "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {k: path(k) for k, r in resources.items() if r["Type"] == "AWS::ApiGateway::Resource"}


def methods(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``"GET /tasks/{taskId}"`` -> the method's properties."""
    paths = _resource_paths(template)
    out = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::ApiGateway::Method":
            props = resource["Properties"]
            ref = props["ResourceId"]
            path = paths[ref["Ref"]] if isinstance(ref, dict) and "Ref" in ref else "/"
            out[f"{props['HttpMethod']} {path}"] = props
    return out


def _setting_applies(setting: dict[str, Any], http_method: str, path: str) -> bool:
    # A method setting's ResourcePath is "/" and the path with each "/" written "~1" ("/~1tasks~1{taskId}")
    wanted = str(setting.get("ResourcePath", "/*"))
    wanted = wanted if wanted == "/*" else wanted.removeprefix("/").replace("~1", "/")
    return setting.get("HttpMethod", "*") in ("*", http_method) and wanted in ("/*", path)


def caching_enabled(stage: dict[str, Any], http_method: str, path: str) -> bool:
    """Whether a stage caches a method. With a cache cluster, GET methods are cached unless a method setting turns
    it off ("When you enable caching for a stage, only GET methods have caching enabled by default"); the most
    specific setting that says anything wins."""
    settings = [s for s in stage.get("MethodSettings", []) if _setting_applies(s, http_method, path)]
    said = [s for s in settings if "CachingEnabled" in s]
    said.sort(key=lambda s: (s.get("ResourcePath", "/*") != "/*", s.get("HttpMethod", "*") != "*"))
    enabled = said[-1]["CachingEnabled"] if said else http_method == "GET"
    return bool(stage.get("CacheClusterEnabled")) and bool(enabled)


def cross_user_caches(template: dict[str, Any]) -> list[str]:
    """Every cached method whose cache key does not name the caller, with its key and authorization."""
    stages = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
    findings = []
    for name, props in methods(template).items():
        http_method, path = name.split(" ", 1)
        for stage in stages:
            if not caching_enabled(stage, http_method, path):
                continue
            keys = set(props.get("Integration", {}).get("CacheKeyParameters", []))
            authorization = str(props.get("AuthorizationType", "NONE"))
            if not keys & IDENTITY_KEY_PARAMETERS.get(authorization, frozenset()):
                findings.append(
                    f"{name}: cached on stage {stage.get('StageName')}, cache key {sorted(keys) or 'none'}, "
                    f"authorization {authorization}: no key parameter names the caller"
                )
    return findings


def _with_stage_cache(template: dict[str, Any], *, key: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The template as a one-line change would make it: the smallest stage cache on (which caches every GET)."""
    changed = copy.deepcopy(template)
    for resource in changed["Resources"].values():
        if resource["Type"] == "AWS::ApiGateway::Stage":
            resource["Properties"] |= {"CacheClusterEnabled": True, "CacheClusterSize": "0.5"}
    for name, props in methods(changed).items():
        if key and name in key:
            props["Integration"]["CacheKeyParameters"] = key[name]
    return changed


def test_no_stage_or_method_caches_a_response_whose_key_lacks_the_caller(template: dict[str, Any]) -> None:
    findings = cross_user_caches(template)
    print(f"cached methods without the caller in the key: {findings or 'none'}")
    assert findings == []


def test_a_stage_cache_would_cache_every_read_route_without_the_caller_in_its_key(template: dict[str, Any]) -> None:
    # Given the stage cache switched on, and each read keyed on every request parameter it declares
    declared = {name: sorted(methods(template)[name].get("RequestParameters", {})) for name in READ_ROUTES}
    findings = cross_user_caches(_with_stage_cache(template, key=declared))
    for line in findings:
        print(line)
    # Then the guard names every GET (the three read routes among them): no parameter names the caller under IAM
    every_get = sorted(name for name in methods(template) if name.startswith("GET "))
    assert set(READ_ROUTES) <= set(every_get)
    assert sorted(f.split(":", 1)[0] for f in findings) == every_get
    assert all("authorization AWS_IAM" in f for f in findings)


def test_a_method_setting_turning_caching_off_keeps_that_method_out(template: dict[str, Any]) -> None:
    changed = _with_stage_cache(template)
    for resource in changed["Resources"].values():
        if resource["Type"] == "AWS::ApiGateway::Stage":
            resource["Properties"]["MethodSettings"][0]["CachingEnabled"] = False
    assert cross_user_caches(changed) == []
    for resource in changed["Resources"].values():
        if resource["Type"] == "AWS::ApiGateway::Stage":
            settings = resource["Properties"]["MethodSettings"]
            settings.append({"HttpMethod": "GET", "ResourcePath": "/~1tasks", "CachingEnabled": True})
    assert [f.split(":", 1)[0] for f in cross_user_caches(changed)] == ["GET /tasks"]


def test_a_cache_keyed_on_an_authorizer_checked_token_is_allowed(template: dict[str, Any]) -> None:
    changed = _with_stage_cache(template)
    for props in methods(changed).values():
        props["AuthorizationType"] = "CUSTOM"
        props.setdefault("Integration", {})["CacheKeyParameters"] = ["method.request.header.Authorization"]
    assert cross_user_caches(changed) == []


def _owner_request(template: dict[str, Any], name: str, user: str, **request: Any) -> str:
    method = methods(template)[name]
    http_method, path = name.split(" ", 1)
    identity = {"user": user, "userArn": f"arn:aws:iam::123456789012:user/{user}", "caller": user}
    rendered = render_request(
        _text(method["Integration"]["RequestTemplates"][JSON]),
        ApiRequest(
            method=http_method,
            resource_path=path,
            identity=identity,
            request_id="r-1",
            request_time_epoch_ms=1_700_000_000_000,
            **request,
        ),
    )
    return rendered


@pytest.mark.parametrize(
    ("name", "request_fields"),
    [
        ("GET /tasks", {"path": "/tasks", "query": {"limit": "25"}}),
        ("GET /tasks/{taskId}/result", {"path": "/tasks/t-1/result", "path_params": {"taskId": "t-1"}}),
    ],
)
def test_the_owner_is_in_the_integration_request_a_cache_hit_never_makes(
    template: dict[str, Any], name: str, request_fields: dict[str, Any]
) -> None:
    # Given alice's and bob's requests for the same method and parameters
    alice = _owner_request(template, name, "AIDAALICE", **request_fields)
    bob = _owner_request(template, name, "AIDABOB", **request_fields)
    # Then the integration request is where they differ (the Query's key condition; the owner the function checks)
    assert "AIDAALICE" in alice and "AIDABOB" in bob and alice.replace("AIDAALICE", "AIDABOB") == bob
    # ...and the most a cache key can hold, every request parameter the method declares, is the same for both
    declared = methods(template)[name].get("RequestParameters", {})
    assert all("identity" not in parameter for parameter in declared)
    print(f"{name}: cache key at most {sorted(declared)}; the owner only in the integration request")


def test_get_task_checks_the_owner_only_in_the_integration_response(template: dict[str, Any]) -> None:
    method = methods(template)["GET /tasks/{taskId}"]
    request = _text(method["Integration"]["RequestTemplates"][JSON])
    responses = [_text(r["ResponseTemplates"][JSON]) for r in method["Integration"]["IntegrationResponses"]]
    # The GetItem is keyed on the path's taskId alone; the owner comparison is in the 200 response template
    assert "$owner" not in request and '"Key": {"taskId"' in request
    assert any('"$!item.userId.S" != "$owner"' in text for text in responses)
    print(json.dumps({"request key": "taskId", "owner check": "integration response (get_task.response.vtl)"}))
