"""The API's request model, the OpenAPI document and the task-type registry name the same types.

API Gateway validates a body against the method's model before the integration runs and answers 400 when it does
not match ("Request validation for REST APIs in API Gateway",
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-request-validation.html): the
local gateway does the same (tests/local/test_apigw.py, test_an_invalid_submission_is_400_saying_why[unknown-type]).
"""

import json
from typing import Any

from infra.openapi import OPENAPI_PATH
from task_types import known_types
from tests.infra.test_template import resources_of


def submission_model(template: dict[str, Any]) -> dict[str, Any]:
    (model,) = [
        m["Properties"]["Schema"]
        for m in resources_of(template, "AWS::ApiGateway::Model").values()
        if m["Properties"]["Name"] == "TaskSubmission"
    ]
    return model


def test_the_request_model_accepts_exactly_the_registered_types(template):
    type_schema = submission_model(template)["properties"]["type"]

    assert type_schema == {"type": "string", "enum": known_types()}


def test_the_submit_method_validates_its_body_against_that_model(template):
    (post,) = [
        m["Properties"]
        for m in resources_of(template, "AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "POST"
    ]
    validator = resources_of(template, "AWS::ApiGateway::RequestValidator")[post["RequestValidatorId"]["Ref"]]

    assert validator["Properties"]["ValidateRequestBody"] is True
    model_id = post["RequestModels"]["application/json"]["Ref"]
    assert resources_of(template, "AWS::ApiGateway::Model")[model_id]["Properties"]["Name"] == "TaskSubmission"


def test_the_committed_openapi_document_lists_the_registered_types():
    document = json.loads(OPENAPI_PATH.read_text())

    assert document["components"]["schemas"]["TaskSubmission"]["properties"]["type"]["enum"] == known_types()
