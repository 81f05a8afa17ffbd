"""API Gateway (REST) parity: requests to the local API Gateway over HTTP and the answers AWS gives them, each with
its evidence. The APIs are ``parity_api.template.json`` (MOCK integrations, so only API Gateway itself answers).

Evidence (found with the search tool; AWS documentation pages and responses recorded against AWS):
- [VALIDATE] "Test basic request validation in API Gateway", API Gateway Developer Guide
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-request-validation-test.html), on the
  documented sample API ("Sample API with basic request validation", api-gateway-request-validation-sample-api-
  swagger.html, reproduced in the fixture): ``GET /validation?q1=cat`` 200; ``GET /validation`` and ``?q1=`` (blank)
  400 ``{"message": "Missing required request parameters: [q1]"}``; POST without ``h1`` *or with it blank* 400 ``[h1]``;
  ``type: bird`` or ``price: 501`` 400 ``{"message": "Invalid request body"}``.
- [RECORDED-VALIDATOR] LocalStack's snapshot recorded against AWS, ``tests/aws/services/apigateway/
  test_apigateway_common.snapshot.json`` ``test_api_gateway_request_validator``: with the header ``x-header-param``,
  path ``issuer`` and query string ``qs1`` all required and missing, AWS answers
  ``Missing required request parameters: [x-header-param, issuer, qs1]`` (header, path, querystring).
- [TYPES] "Gateway response types for API Gateway" (supported-gateway-response-types.html): default status codes
  (MISSING_AUTHENTICATION_TOKEN 403, BAD_REQUEST_* 400, UNSUPPORTED_MEDIA_TYPE 415, REQUEST_TOO_LARGE 413,
  API_CONFIGURATION_ERROR 500 "when integration response mapping can't match any template and no default template
  is configured"); a type that is not customised "defaults to the DEFAULT_4XX [DEFAULT_5XX] type"; "Changing the
  status code of this fallback gateway response changes the status codes of all other 4XX responses".
- [CUSTOMIZE] "Set up a gateway response for a REST API using the API Gateway console"
  (set-up-gateway-response-using-the-console.html): MISSING_AUTHENTICATION_TOKEN customised to 404 with headers
  ``'a.b.c'`` (static), ``method.request.header.x-amzn-RequestId``, ``method.request.querystring.q``, and a body
  template of ``$context.error.messageString``, ``$context.error.responseType``, ``$context.stage``,
  ``$stageVariables.a`` (``$context.error.messageString`` is "the quoted value of $context.error.message", so the
  fixture writes it unquoted, as AWS's default template does); the documented answer carries
  ``x-amzn-ErrorType: MissingAuthenticationTokenException``,
  ``x-request-query: 1``, ``Access-Control-Allow-Origin: a.b.c`` and the body with ``"message":"Missing
  Authentication Token"``, ``"type": MISSING_AUTHENTICATION_TOKEN``, ``"stage": custErr``, ``"stageVariables.a": a``
  (gateway-response templates are plain substitution, not VTL: mapping template reference, $context.error.message).
- [CONTEXT] "Variables for data transformations for API Gateway" (api-gateway-mapping-template-reference.html):
  ``$context.accountId`` "The API owner's AWS account ID"; ``domainName`` "the same as the incoming Host header";
  ``domainPrefix`` its first label; ``path`` ``/{stage}/root/child``; ``protocol`` e.g. ``HTTP/1.1``;
  ``requestTime`` CLF ``dd/MMM/yyyy:HH:mm:ss +-hhmm``; ``requestTimeEpoch``; ``identity.sourceIp``/``userAgent``;
  ``$input.params(x)`` searches path, query string, header; ``$util.escapeJavaScript`` turns ``'`` into ``\\'`` and
  ``.replaceAll("\\\\'","'")`` restores it.
- [SELECT] LocalStack's ``test_http_integration_status_code_selection`` (aws-validated,
  tests/aws/services/apigateway/test_apigateway_integrations.py): an integration response with selection pattern
  ``4\\d{2}`` (status 400) is chosen for a backend 404, the default response (200) for a 201.
- [OVERRIDE] "Override your API's request and response parameters and status codes" (apigateway-override-request-
  response-parameters.html): ``$context.responseOverride.status`` / ``.header.<name>`` set in a response template
  replace the method response's status code and header.
- [PASSTHROUGH] "Method request behavior for payloads without mapping templates" (integration-passthrough-
  behaviors.html): NEVER "rejects ... with an HTTP 415 Unsupported Media Type response".
- [QUOTA] "Amazon API Gateway quotas" (limits.html): REST API payload size 10 MB.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from taskrail.local.apigw import MAX_PAYLOAD_BYTES, LocalApiGateway
from taskrail.local.region import ACCOUNT_ID
from tests.parity.apigateway.http import send

MISSING_Q1 = {"message": "Missing required request parameters: [q1]"}
MISSING_H1 = {"message": "Missing required request parameters: [h1]"}
INVALID_BODY = {"message": "Invalid request body"}
PET = {"name": "Marco", "type": "dog", "price": 260}


VALIDATION_CASES = [
    ("GET /validation?q1=cat passes", "GET", "/validation?q1=cat", {}, None, 200, {"q1": "cat"}),
    ("GET /validation without q1", "GET", "/validation", {}, None, 400, MISSING_Q1),
    ("GET /validation?q1= (blank)", "GET", "/validation?q1=", {}, None, 400, MISSING_Q1),
    ("POST /validation h1 + a valid pet passes", "POST", "/validation", {"h1": "v1"}, PET, 200, {"message": "success"}),
    ("POST /validation without h1", "POST", "/validation", {}, PET, 400, MISSING_H1),
    ("POST /validation with h1 blank", "POST", "/validation", {"h1": ""}, PET, 400, MISSING_H1),
    ("POST type bird", "POST", "/validation", {"h1": "v1"}, PET | {"type": "bird"}, 400, INVALID_BODY),
    ("POST price 501", "POST", "/validation", {"h1": "v1"}, PET | {"price": 501}, 400, INVALID_BODY),
    (
        "POST without the required name",
        "POST",
        "/validation",
        {"h1": "v1"},
        {"type": "cat", "price": 30},
        400,
        INVALID_BODY,
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "headers", "body", "status", "answer"),
    VALIDATION_CASES,
    ids=[c[0] for c in VALIDATION_CASES],
)
def test_request_validation_answers_as_the_documented_sample_api(
    api: LocalApiGateway,
    case: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any,
    status: int,
    answer: dict[str, Any],
) -> None:
    response = send(api, method, path, f"{case} [VALIDATE]", headers=headers, json=body)
    assert (response.status_code, response.json()) == (status, answer)


def test_missing_required_parameters_are_listed_header_path_querystring(api: LocalApiGateway) -> None:
    response = send(api, "POST", "/issuers/abc", "all required parameters missing [RECORDED-VALIDATOR]", json={})
    assert response.status_code == 400
    assert response.json() == {"message": "Missing required request parameters: [x-header-param, issuer, qs1]"}


def test_a_customised_missing_authentication_token_answers_as_the_walkthrough(api: LocalApiGateway) -> None:
    response = send(
        api, "GET", "/pets/5/type?q=1", "customised MISSING_AUTHENTICATION_TOKEN [CUSTOMIZE]",
        headers={"x-amzn-RequestId": "123344566"},
    )  # fmt: skip
    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert response.headers["Access-Control-Allow-Origin"] == "a.b.c"
    assert response.headers["header-1"] == "static"
    assert response.headers["x-request-query"] == "1"
    assert response.headers["x-request-id"] == "123344566"
    body = response.text
    assert '"message":"Missing Authentication Token"' in body
    assert '"type": "MISSING_AUTHENTICATION_TOKEN"' in body
    assert '"statusCode": "\'404\'"' in body  # not VTL: the quotes stay
    assert '"stage": "custErr"' in body
    assert '"stageVariables.a": "a"' in body


def test_the_default_4xx_answers_every_uncustomised_4xx(fallback_api: LocalApiGateway) -> None:
    unknown = send(fallback_api, "GET", "/nowhere", "DEFAULT_4XX for a missing route [TYPES]")
    assert unknown.status_code == 418  # DEFAULT_4XX's status code replaces every 4XX's
    assert unknown.json() == {"kind": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token"}
    assert unknown.headers["x-fallback"] == "4xx"
    assert unknown.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_a_customised_bad_request_body_template_gets_the_validation_error(fallback_api: LocalApiGateway) -> None:
    response = send(fallback_api, "POST", "/things", "customised BAD_REQUEST_BODY [TYPES]", json={"other": 1})
    detail = response.json()["detail"]
    assert "name" in detail  # the validation error names the missing property


def test_no_matching_integration_response_is_api_configuration_error(fallback_api: LocalApiGateway) -> None:
    response = send(fallback_api, "GET", "/broken", "no integration response matches [TYPES]")
    assert response.status_code == 500
    assert response.json() == {"kind": "API_CONFIGURATION_ERROR"}


def test_no_matching_integration_response_without_customisation_is_internal_server_error(api: LocalApiGateway) -> None:
    response = send(api, "GET", "/nodefault", "no integration response matches, default answer [TYPES]")
    assert response.status_code == 500  # API_CONFIGURATION_ERROR's default status, with the default template:
    assert list(response.json()) == ["message"]


def test_passthrough_never_refuses_a_media_type_without_template(api: LocalApiGateway) -> None:
    response = send(
        api,
        "POST",
        "/never",
        "NEVER without a template [PASSTHROUGH]",
        data="x",
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert list(response.json()) == ["message"]  # the default gateway response template


def test_a_body_over_10_mb_is_refused_413(api: LocalApiGateway) -> None:
    fits = send(api, "POST", "/never", "10 MB body [QUOTA]", data=b"x" * MAX_PAYLOAD_BYTES, headers={"h": "1"})
    over = send(api, "POST", "/never", "10 MB + 1 byte body [QUOTA]", data=b"x" * (MAX_PAYLOAD_BYTES + 1))
    assert MAX_PAYLOAD_BYTES == 10 * 1024 * 1024
    assert fits.status_code == 200  # no Content-Type: application/json, whose template exists
    assert over.status_code == 413


@pytest.mark.parametrize(("code", "status", "selected"), [("404", 400, "4\\d{2}"), ("201", 200, "default")])
def test_the_selection_pattern_matches_the_integration_status(
    api: LocalApiGateway, code: str, status: int, selected: str
) -> None:
    response = send(api, "GET", f"/status/{code}", f"integration status {code} [SELECT]")
    assert (response.status_code, response.json()) == (status, {"selected": selected})


def test_response_override_replaces_status_and_header(api: LocalApiGateway) -> None:
    response = send(api, "GET", "/override", "responseOverride [OVERRIDE]")
    assert (response.status_code, response.json()) == (404, {"overridden": True})
    assert response.headers["X-Original"] == "200"


def test_context_variables_are_what_api_gateway_documents(api: LocalApiGateway) -> None:
    before = time.time_ns() // 1_000_000
    response = send(
        api, "GET", "/pets/7?q=it%27s%20%22x%22", "$context and $input.params [CONTEXT]",
        headers={"User-Agent": "parity/1.0"},
    )  # fmt: skip
    after = time.time_ns() // 1_000_000
    assert response.status_code == 200
    seen = response.json()
    host = api.url.split("/")[2]
    assert seen["requestId"] == response.headers["x-amzn-RequestId"]
    assert (seen["httpMethod"], seen["resourcePath"], seen["path"]) == ("GET", "/pets/{petId}", "/custErr/pets/7")
    assert (seen["stage"], seen["stageVariable"], seen["accountId"]) == ("custErr", "a", ACCOUNT_ID)
    assert (seen["domainName"], seen["domainPrefix"]) == (host, host.split(".")[0])
    assert seen["protocol"] == "HTTP/1.1"
    assert (seen["sourceIp"], seen["userAgent"]) == ("127.0.0.1", "parity/1.0")
    assert before <= seen["requestTimeEpoch"] <= after
    parsed = dt.datetime.strptime(seen["requestTime"], "%d/%b/%Y:%H:%M:%S %z")
    assert abs(parsed.timestamp() * 1000 - seen["requestTimeEpoch"]) < 1000
    assert (seen["petId"], seen["q"]) == ("7", 'it\'s "x"')
