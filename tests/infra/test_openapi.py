"""docs/openapi.json is generated from the synthesized API definition: it is valid and never stale."""

import json
import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from infra.openapi import OPENAPI_PATH, OPERATIONS, build_openapi, openapi_drift
from task_common.contract import TIMESTAMP_FIELDS, TIMESTAMP_PATTERN


@pytest.fixture(scope="module")
def document(template: dict[str, Any]) -> dict[str, Any]:
    return build_openapi(template)


def test_committed_openapi_document_matches_the_api_definition(template):
    assert not openapi_drift(template), "docs/openapi.json is stale: run `python -m infra.openapi` and commit it"


def test_openapi_document_is_a_valid_openapi_3_0_document():
    validate(json.loads(OPENAPI_PATH.read_text()))


def test_every_method_of_the_template_is_an_operation(template, document):
    methods = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Method"]
    operations = {(m.upper(), path) for path, item in document["paths"].items() for m in item}

    assert len(operations) == len(methods)
    assert operations == set(OPERATIONS)


def test_every_operation_requires_sigv4_and_documents_the_gateway_refusals(document):
    scheme = document["components"]["securitySchemes"]["sigv4"]
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["security"] == [{"sigv4": []}], f"{method} {path}"
            assert {"400", "403", "413", "415"} <= set(operation["responses"]), f"{method} {path}"


def test_submission_body_is_the_api_gateway_model(template, document):
    model = next(
        r["Properties"]["Schema"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Model"
    )
    body = document["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert body == {"$ref": "#/components/schemas/TaskSubmission"}
    assert document["components"]["schemas"]["TaskSubmission"] == {k: v for k, v in model.items() if k != "$schema"}


def test_parameters_come_from_the_method_request_parameters(document):
    def names(path: str, method: str) -> set[tuple[str, str, bool]]:
        parameters = document["paths"][path][method].get("parameters", [])
        return {(p["in"], p["name"], p.get("required", False)) for p in parameters}

    assert names("/tasks", "post") == {("header", "Idempotency-Key", False)}
    assert names("/tasks", "get") == {("query", "status", False), ("query", "limit", False), ("query", "next", False)}
    assert names("/tasks/{taskId}", "get") == {("path", "taskId", True)}
    assert names("/tasks/{taskId}", "delete") == {("path", "taskId", True)}
    assert names("/tasks/{taskId}/result", "get") == {("path", "taskId", True)}


def test_every_timestamp_of_a_task_is_documented_as_rfc3339_with_milliseconds(document):
    properties = document["components"]["schemas"]["Task"]["properties"]
    documented = {name for name, schema in properties.items() if schema.get("format") == "date-time"}

    assert documented == set(TIMESTAMP_FIELDS)
    for name in TIMESTAMP_FIELDS:
        assert properties[name]["type"] == "string" and properties[name]["pattern"] == TIMESTAMP_PATTERN
        assert re.fullmatch(TIMESTAMP_PATTERN, properties[name]["example"])
