"""API Gateway mapping-template (VTL) semantics over HTTP, against recorded AWS behaviour: ``$context`` overrides
and an empty body. The APIs are ``parity_api.template.json`` (MOCK integrations).

Evidence (found with the search tool):
- [RECORDED-REQUEST-OVERRIDE] LocalStack's ``test_integration_mock_with_request_overrides_in_response_template``
  (``@markers.aws.validated``, tests/aws/services/apigateway/test_apigateway_integrations.py, snapshot recorded
  against AWS on 06-11-2024 in test_apigateway_integrations.snapshot.json): a MOCK integration whose request
  template sets ``$context.requestOverride.path.body`` from ``$util.base64Decode($input.params('testPath'))``, and
  whose response template reads it back with ``$util.parseJson`` and compares ``.message`` in ``#if``/``#elseif``.
  AWS answers ``{"response": "path was path one"}`` for ``{"message": "path1"}``, ``"path was path two"`` for
  ``path2`` and ``"this is the else clause"`` otherwise. The fixture reproduces both templates verbatim.
- [FINAL] "Override your API's request and response parameters and status codes for REST APIs in API Gateway",
  API Gateway Developer Guide
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-override-request-response-parameters.html):
  "Overrides are final. An override may only be applied to each parameter once. If you try to override the same
  parameter multiple times, API Gateway returns a 5XX response."
- [EMPTY-BODY] LocalStack pull request 12413 "APIGW: fix rendering of $input.body when empty" (merged 2025-03-19,
  with tests validated against AWS): "API Gateway will replace an empty body with ``{}`` when using
  ``$input.body`` in a VTL template [...] I've also tried with a request template set with ``text/html`` and the
  empty body is still ``{}`` so it's not dependent on the content-type."
"""

from __future__ import annotations

import base64
import json

import pytest

from taskrail.local.apigw import LocalApiGateway
from tests.parity.apigateway.http import send

RECORDED_OVERRIDES = [
    ("path1", {"response": "path was path one"}),
    ("path2", {"response": "path was path two"}),
    ("whatever", {"response": "this is the else clause"}),
]


@pytest.mark.parametrize(("message", "answer"), RECORDED_OVERRIDES, ids=[m for m, _ in RECORDED_OVERRIDES])
def test_a_request_override_set_in_the_request_template_reaches_the_response_template(
    api: LocalApiGateway, message: str, answer: dict[str, str]
) -> None:
    path_data = base64.b64encode(json.dumps({"message": message}).encode()).decode()
    response = send(api, "GET", f"/overrides/{path_data}", f"requestOverride {message} [RECORDED-REQUEST-OVERRIDE]")
    assert (response.status_code, response.json()) == (200, answer)


@pytest.mark.parametrize("content_type", ["application/json", "text/html"])
def test_input_body_of_an_empty_body_is_an_empty_object(api: LocalApiGateway, content_type: str) -> None:
    response = send(
        api, "POST", "/emptybody", f"$input.body, empty body, {content_type} [EMPTY-BODY]",
        headers={"Content-Type": content_type},
    )  # fmt: skip
    assert (response.status_code, response.json()) == (200, {"body": "{}"})


def test_a_response_override_set_twice_is_a_5xx(fallback_api: LocalApiGateway) -> None:
    response = send(fallback_api, "GET", "/twice", "responseOverride.status set twice [FINAL]")
    assert 500 <= response.status_code < 600, response.text


def test_a_request_override_set_twice_is_a_5xx(fallback_api: LocalApiGateway) -> None:
    response = send(fallback_api, "GET", "/twicerequest", "requestOverride.header set twice [FINAL]")
    assert 500 <= response.status_code < 600, response.text
