"""The REST API as an OpenAPI 3.0 document, generated from the *synthesized template* (``docs/openapi.json``).

Paths, methods, parameters, the request model, the status codes of every method and its authorization come from
the template's ``AWS::ApiGateway::*`` resources, so the document describes what is deployed (and what the local
API Gateway serves), not a hand copy. What the template cannot say, the shape of each answer's body, is declared
here once per route; a route the template has and this module does not know fails the generation.

``python -m infra.openapi``          write docs/openapi.json from cdk.out (synth if the sources changed)
``python -m infra.openapi --check``  fail if docs/openapi.json differs from what the template gives (drift check)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.constructs.api_limits import MAX_STORED_PARAMS_BYTES
from task_common.contract import ALL_STATUSES, TIMESTAMP_PATTERN, Status, result_key

ROOT = Path(__file__).resolve().parents[1]
OPENAPI_PATH = ROOT / "docs" / "openapi.json"
JSON = "application/json"
SIGV4 = "sigv4"


@dataclass(frozen=True)
class Operation:
    """What the template does not carry: a name, a summary and the schema of the success body."""

    operation_id: str
    summary: str
    success_schema: str


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/tasks"): Operation(
        "submitTask",
        "Submit a task: stored (QUEUED) before anything runs; the same Idempotency-Key returns the same task",
        "TaskAccepted",
    ),
    ("GET", "/tasks"): Operation(
        "listTasks",
        "List the caller's own tasks, newest first, optionally of one status, a page of up to limit (25, at most 100) "
        "at a time; follow next for the rest",
        "TaskList",
    ),
    ("GET", "/tasks/{taskId}"): Operation(
        "getTask", "Read one of the caller's tasks: status, progress, result location or error", "Task"
    ),
    ("DELETE", "/tasks/{taskId}"): Operation(
        "cancelTask", "Cancel one of the caller's QUEUED or RUNNING tasks", "TaskCancelled"
    ),
    ("GET", "/tasks/{taskId}/result"): Operation(
        "getTaskResult",
        "Read the result of one of the caller's SUCCEEDED tasks: inline when small, a time-limited link when large "
        "(409 while the task has no result)",
        "TaskResult",
    ),
    ("GET", "/me"): Operation(
        "getMe",
        "The caller's user record (created on the caller's first request, never twice) and profile; lastLogin is "
        "kept current at most once an hour",
        "Me",
    ),
    ("PUT", "/me/profile"): Operation(
        "updateProfile",
        "Set the caller's fullName, avatar (a key under the caller's own users/{userId}/ prefix, else 400) and "
        "preferences (notifications: email, onFailed, onSucceeded); fields left out are kept",
        "Profile",
    ),
}

STATUS_DESCRIPTIONS = {
    "200": "OK",
    "202": "Accepted",
    "400": "The request is invalid; the message says why",
    "403": "Missing, unknown, forged or expired credentials (SigV4), or an unknown route",
    "404": "No such task (another user's task is indistinguishable from a missing one)",
    "409": "The task is already finished (cancel), or has no result (result): the message says why",
    "413": "The request is larger than API Gateway's payload limit (10 MB), or its params would take more than "
    f"{MAX_STORED_PARAMS_BYTES} bytes stored (put large inputs in S3 and pass their location)",
    "415": "The Content-Type has no request template (only application/json is accepted)",
    "422": "This Idempotency-Key was already used with a different type or params (the same body returns that task)",
    "429": "Throttled by the stage's rate limit; retry with the same Idempotency-Key",
    "503": "The task store is unavailable or throttled; nothing was changed, retry after a backoff (with the same "
    "Idempotency-Key)",
}


def _string(**extra: Any) -> dict[str, Any]:
    return {"type": "string", **extra}


def _timestamp(description: str) -> dict[str, Any]:
    """Every timestamp of every answer: RFC 3339 UTC with milliseconds (task_common.contract.TIMESTAMP_PATTERN)."""
    return {
        "type": "string",
        "format": "date-time",
        "pattern": TIMESTAMP_PATTERN,
        "example": "2026-12-01T15:34:22.123Z",
        "description": f"{description}: RFC 3339 UTC with milliseconds",
    }


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}


TASK_PROPERTIES: dict[str, Any] = {
    "taskId": _string(),
    "type": _string(),
    "status": {"$ref": "#/components/schemas/TaskStatus"},
    "progress": {"type": "integer", "minimum": 0, "maximum": 100},
    "attempt": {"type": "integer", "minimum": 0},
    "createdAt": {**_timestamp("when the task was submitted"), "nullable": True},
    "cancelledAt": _timestamp("when the task was cancelled"),
    "startedAt": _timestamp("when the workflow claimed the task (its latest attempt)"),
    "updatedAt": _timestamp("the latest change of status or progress"),
    "finishedAt": _timestamp("when the task ended (SUCCEEDED, REJECTED or FAILED)"),
    "resultLocation": _string(description=f"s3://bucket/{result_key('{taskId}')}"),
    "error": _string(description="the error type, e.g. ValidationFailed"),
    "cause": _string(),
    "executionArn": _string(),
    "idempotencyKey": _string(),
    "params": {"type": "object", "nullable": True, "description": "the submitted params, as submitted"},
}

RESPONSE_SCHEMAS: dict[str, Any] = {
    "TaskStatus": {"type": "string", "enum": list(ALL_STATUSES)},
    "Task": _object(TASK_PROPERTIES, ["taskId", "type", "status", "progress", "attempt", "createdAt", "params"]),
    # A listed task: every field but params (GET /tasks/{taskId} has them; the owner index does not project them).
    "TaskSummary": _object(
        {name: schema for name, schema in TASK_PROPERTIES.items() if name != "params"},
        ["taskId", "type", "status", "progress", "attempt", "createdAt"],
    ),
    "TaskList": _object(
        {
            "tasks": {"type": "array", "items": {"$ref": "#/components/schemas/TaskSummary"}},
            "count": {"type": "integer"},
            "next": _string(
                description="present when more tasks may follow: pass it back unchanged as ?next= for the next page "
                "(a filtered page may hold fewer than limit tasks and still have a next)"
            ),
        },
        ["tasks", "count"],
    ),
    "TaskAccepted": _object(
        {
            "taskId": _string(),
            "status": {"$ref": "#/components/schemas/TaskStatus"},
            "duplicate": {"type": "boolean", "description": "present (true) when the Idempotency-Key was seen"},
        },
        ["taskId", "status"],
    ),
    "TaskCancelled": _object(
        {"taskId": _string(), "status": {"type": "string", "enum": [Status.CANCELLED.value]}}, ["taskId", "status"]
    ),
    "TaskResult": {
        **_object(
            {
                "taskId": _string(),
                "type": _string(),
                "result": {"description": "the result document (a small result: up to the claim-check threshold)"},
                "resultUrl": _string(
                    format="uri",
                    description="a large result: a presigned GET of the result document, no credentials needed",
                ),
                "expiresAt": _timestamp("when resultUrl stops working"),
                "resultBytes": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "the size of the document behind resultUrl",
                },
            },
            ["taskId", "type"],
        ),
        "description": "Either result (small) or resultUrl with expiresAt (large)",
    },
    "Profile": _object(
        {
            "userId": _string(description="the caller's owner identity, the userId of their tasks"),
            "fullName": _string(),
            "avatar": _string(description="a key under users/{userId}/ in the results bucket"),
            "preferences": {"type": "object", "description": "as last set (notifications, timezone, theme)"},
            "lastLogin": _timestamp("the caller's latest GET /me, to the hour"),
            "updatedAt": _timestamp("the latest PUT /me/profile"),
        },
        ["userId", "preferences"],
    ),
    "User": _object(
        {
            "userId": _string(),
            "username": _string(description="the IAM user's or role's name"),
            "email": _string(description="where outcome notifications go, once asked for"),
            "status": _string(),
            "createdAt": _timestamp("the caller's first request"),
            "updatedAt": _timestamp("the latest change of the record"),
        },
        ["userId"],
    ),
    "Me": _object(
        {"user": {"$ref": "#/components/schemas/User"}, "profile": {"$ref": "#/components/schemas/Profile"}},
        ["user", "profile"],
    ),
    "Error": _object({"message": _string()}, ["message"]),
}


class _Template:
    """The parts of the template that make up one REST API."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.resources: dict[str, dict[str, Any]] = template.get("Resources", {})
        apis = self.of_type("AWS::ApiGateway::RestApi")
        if len(apis) != 1:
            raise ValueError(f"expected one AWS::ApiGateway::RestApi in the template, found {sorted(apis)}")
        ((self.api_id, self.api),) = apis.items()

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in self.resources.items()
            if resource.get("Type") == resource_type
        }

    def resource_path(self, resource_id: Any) -> str:
        ref = resource_id.get("Ref") if isinstance(resource_id, dict) else None
        if ref is None:  # Fn::GetAtt [RestApi, RootResourceId]
            return "/"
        props = self.resources[ref]["Properties"]
        parent = self.resource_path(props["ParentId"])
        return f"{parent.rstrip('/')}/{props['PathPart']}"

    def stage(self) -> dict[str, Any]:
        stages = list(self.of_type("AWS::ApiGateway::Stage").values())
        if len(stages) != 1:
            raise ValueError(f"expected one AWS::ApiGateway::Stage, found {len(stages)}")
        return stages[0]

    def model(self, reference: Any) -> dict[str, Any]:
        ref = reference.get("Ref") if isinstance(reference, dict) else None
        models = self.of_type("AWS::ApiGateway::Model")
        found = models.get(str(ref)) or next((m for m in models.values() if m.get("Name") == reference), None)
        if found is None:
            raise ValueError(f"request model {reference} is not in the template")
        return found


def _parameters(request_parameters: dict[str, bool]) -> list[dict[str, Any]]:
    locations = {"path": "path", "querystring": "query", "header": "header"}
    parameters = []
    for key, required in sorted(request_parameters.items()):
        location, _, name = key.removeprefix("method.request.").partition(".")
        parameter: dict[str, Any] = {"name": name, "in": locations[location], "schema": {"type": "string"}}
        if required or location == "path":
            parameter["required"] = True
        parameters.append(parameter)
    return parameters


def _model_schema(model: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema draft 4 (API Gateway's) as an OpenAPI 3.0 schema object: only ``$schema`` has no place there."""
    return {key: value for key, value in model["Schema"].items() if key != "$schema"}


def _error_statuses(method: dict[str, Any], throttled: bool) -> list[str]:
    """Gateway responses API Gateway itself can answer before the integration runs."""
    statuses = ["413"]
    if method.get("AuthorizationType") == "AWS_IAM":
        statuses.append("403")
    if method.get("Integration", {}).get("PassthroughBehavior") == "NEVER":
        statuses.append("415")
    if throttled:
        statuses.append("429")
    return statuses


def _response(status: str, schema: str) -> dict[str, Any]:
    return {
        "description": STATUS_DESCRIPTIONS.get(status, "See the message"),
        "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _operation(
    template: _Template, method: dict[str, Any], path: str, throttled: bool, schemas: dict[str, Any]
) -> dict[str, Any]:
    http_method = str(method["HttpMethod"]).upper()
    known = OPERATIONS.get((http_method, path))
    if known is None:
        raise ValueError(f"{http_method} {path} is in the template but not in infra.openapi.OPERATIONS")
    operation: dict[str, Any] = {"operationId": known.operation_id, "summary": known.summary}
    parameters = _parameters({k: bool(v) for k, v in (method.get("RequestParameters") or {}).items()})
    if parameters:
        operation["parameters"] = parameters
    content = {}
    for content_type, reference in sorted((method.get("RequestModels") or {}).items()):
        model = template.model(reference)
        schemas[str(model["Name"])] = _model_schema(model)
        content[content_type] = {"schema": {"$ref": f"#/components/schemas/{model['Name']}"}}
    if content:
        operation["requestBody"] = {"required": True, "content": content}
    success = {str(r["StatusCode"]) for r in method.get("MethodResponses", []) if str(r["StatusCode"]).startswith("2")}
    statuses = {str(r["StatusCode"]) for r in method.get("MethodResponses", [])} | set(
        _error_statuses(method, throttled)
    )
    operation["responses"] = {
        status: _response(status, known.success_schema if status in success else "Error") for status in sorted(statuses)
    }
    if method.get("AuthorizationType") == "AWS_IAM":
        operation["security"] = [{SIGV4: []}]
    return operation


def build_openapi(template: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the template's REST API."""
    api = _Template(template)
    stage = api.stage()
    throttled = any("ThrottlingRateLimit" in setting for setting in stage.get("MethodSettings", []))
    schemas: dict[str, Any] = {}
    paths: dict[str, dict[str, Any]] = {}
    methods = sorted(
        (
            (api.resource_path(m["ResourceId"]), str(m["HttpMethod"]).lower(), m)
            for m in api.of_type("AWS::ApiGateway::Method").values()
        ),
        key=lambda entry: (entry[0], entry[1]),
    )
    for path, http_method, method in methods:
        paths.setdefault(path, {})[http_method] = _operation(api, method, path, throttled, schemas)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": str(api.api.get("Name", api.api_id)),
            "description": str(api.api.get("Description", "")),
            "version": str(stage["StageName"]),
        },
        "servers": [
            {
                "url": "https://{restApiId}.execute-api.{region}.amazonaws.com/{basePath}",
                "variables": {
                    "restApiId": {"default": "example"},
                    "region": {"default": "us-east-1"},
                    "basePath": {"default": str(stage["StageName"])},
                },
            }
        ],
        "paths": paths,
        "components": {
            "schemas": dict(sorted((schemas | RESPONSE_SCHEMAS).items())),
            "securitySchemes": {
                SIGV4: {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS Signature Version 4 for the service execute-api (IAM authorization)",
                    "x-amazon-apigateway-authtype": "awsSigv4",
                }
            },
        },
    }


def render(template: dict[str, Any]) -> str:
    return json.dumps(build_openapi(template), indent=2, ensure_ascii=False) + "\n"


def openapi_drift(template: dict[str, Any], path: Path = OPENAPI_PATH) -> bool:
    """True when the committed document differs from what the template gives."""
    return not path.exists() or path.read_text() != render(template)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if docs/openapi.json is stale")
    args = parser.parse_args(argv)
    from infra.synth import load_template

    template = load_template()
    if args.check:
        if openapi_drift(template):
            print(
                f"{OPENAPI_PATH.relative_to(ROOT)} is stale. Run `python -m infra.openapi` and commit it.",
                file=sys.stderr,
            )
            return 1
        print(f"{OPENAPI_PATH.relative_to(ROOT)} matches the API definition")
        return 0
    OPENAPI_PATH.parent.mkdir(exist_ok=True)
    OPENAPI_PATH.write_text(render(template))
    print(f"wrote {OPENAPI_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
