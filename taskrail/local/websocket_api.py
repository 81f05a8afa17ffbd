"""A WebSocket API of the synthesized template (``AWS::ApiGatewayV2::*``, ProtocolType WEBSOCKET), read and provisioned.

Nothing here is a hand copy of the API: its routes, their integrations (type, service action, the role they run as,
request templates and template selection), route responses (two-way routes) and integration responses are read from
the template, their intrinsics resolved with the provisioner's resolver (so the table a request template names is
the local table). :func:`provision` is the one line of ``provision.PROVISIONERS``: it creates the API, its stage,
integrations, routes and responses in moto, so ``aws apigatewayv2 get-apis`` / ``get-routes`` list what the
template defines, and records the API's id (``Ref``) and ``ApiEndpoint`` (``wss://{apiId}.execute-api.{region}.
amazonaws.com``) that outputs, function environments and IAM policies name. The local server
(:mod:`taskrail.local.websocket`) serves the parsed :class:`WebSocketApiDefinition`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from taskrail.local.region import REGION

__all__ = [
    "WEBSOCKET_API",
    "IntegrationResponse",
    "Route",
    "WebSocketApiDefinition",
    "WsIntegration",
    "provision",
]

WEBSOCKET_API = "AWS::ApiGatewayV2::Api"
STAGE = "AWS::ApiGatewayV2::Stage"
INTEGRATION = "AWS::ApiGatewayV2::Integration"
ROUTE = "AWS::ApiGatewayV2::Route"
ROUTE_RESPONSE = "AWS::ApiGatewayV2::RouteResponse"
INTEGRATION_RESPONSE = "AWS::ApiGatewayV2::IntegrationResponse"
DEFAULT_KEY = "$default"
CONNECT, DISCONNECT = "$connect", "$disconnect"

Resolve = Callable[[Any], Any]


@dataclass(frozen=True)
class IntegrationResponse:
    key: str  # "$default" or a status-code regex between slashes ("/4\\d{2}/")
    templates: dict[str, str]
    template_selection: str = ""

    def matches(self, status: int) -> bool:
        if self.key == DEFAULT_KEY:
            return False
        return re.fullmatch(self.key.strip("/"), str(status)) is not None


@dataclass(frozen=True)
class WsIntegration:
    type: str  # AWS | MOCK (others are not emulated)
    service: str = ""
    action: str = ""
    region: str = REGION
    credentials: str = ""  # CredentialsArn: the role API Gateway calls the service as
    request_templates: dict[str, str] = field(default_factory=dict)
    template_selection: str = ""
    passthrough: str = "WHEN_NO_MATCH"
    responses: tuple[IntegrationResponse, ...] = ()
    timeout_seconds: float = 29.0

    def response_for(self, status: int) -> IntegrationResponse | None:
        """The integration response whose key matches the status, else the ``$default`` one (None if neither)."""
        default = None
        for response in self.responses:
            if response.matches(status):
                return response
            if response.key == DEFAULT_KEY:
                default = response
        return default


@dataclass(frozen=True)
class Route:
    key: str
    authorization_type: str = "NONE"
    integration: WsIntegration | None = None
    two_way: bool = False  # a RouteResponse exists: the integration response's body goes back to the client


@dataclass(frozen=True)
class WebSocketApiDefinition:
    api_id: str
    stage: str
    route_selection_expression: str
    routes: dict[str, Route]

    @classmethod
    def from_template(
        cls, template: dict[str, Any], resolve: Resolve, api_logical_id: str | None = None
    ) -> WebSocketApiDefinition:
        return _Reader(template, resolve, api_logical_id).read()

    def route_key(self, body: str) -> str | None:
        """The route a message selects: the expression's value if a route has that key, else ``$default`` if the API
        has one, else None (AWS answers the client with an error)."""
        value = evaluate_selection(self.route_selection_expression, body)
        if value is not None and value in self.routes and value not in (CONNECT, DISCONNECT):
            return value
        return DEFAULT_KEY if DEFAULT_KEY in self.routes else None


_BODY_PATH = re.compile(r"\$\{?request\.body\.([A-Za-z0-9_.]+)\}?")


def evaluate_selection(expression: str, body: str) -> str | None:
    """A selection expression over a message (``$request.body.action``, ``${request.body.a.b}``, literals such as
    ``\\$default``) as API Gateway evaluates it; None when the body is not JSON or the path is missing."""
    if expression.replace("\\", "") == DEFAULT_KEY:
        return DEFAULT_KEY
    try:
        document = json.loads(body)
    except ValueError:
        return None
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        node: Any = document
        for part in match.group(1).split("."):
            if not isinstance(node, dict) or part not in node:
                missing = True
                return ""
            node = node[part]
        return node if isinstance(node, str) else json.dumps(node)

    result = _BODY_PATH.sub(value, expression)
    return None if missing else result


def _ref(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return str(value["Ref"])
    return None


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            yield str(value["Ref"])
        for inner in value.values():
            yield from _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _refs(inner)


class _Reader:
    def __init__(self, template: dict[str, Any], resolve: Resolve, api: str | None) -> None:
        self._resources: dict[str, dict[str, Any]] = template.get("Resources", {})
        self._resolve = resolve
        apis = websocket_apis(template)
        if api is None:
            if len(apis) != 1:
                raise ValueError(f"the template has {len(apis)} WebSocket APIs ({apis}); name one")
            api = apis[0]
        if api not in apis:
            raise ValueError(f"{api} is not a WebSocket AWS::ApiGatewayV2::Api of the template")
        self._api = api

    def of_type(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (lid, r.get("Properties", {}))
            for lid, r in self._resources.items()
            if r.get("Type") == kind and _ref(r.get("Properties", {}).get("ApiId")) == self._api
        ]

    def read(self) -> WebSocketApiDefinition:
        props = self._resources[self._api]["Properties"]
        stages = [str(p["StageName"]) for _, p in self.of_type(STAGE)]
        if not stages:
            raise ValueError(f"no AWS::ApiGatewayV2::Stage for {self._api}")
        responses: dict[str, list[IntegrationResponse]] = {}
        for _, p in self.of_type(INTEGRATION_RESPONSE):
            responses.setdefault(str(_ref(p["IntegrationId"])), []).append(
                IntegrationResponse(
                    str(p["IntegrationResponseKey"]),
                    {str(k): str(v) for k, v in (self._resolve(p.get("ResponseTemplates")) or {}).items()},
                    str(p.get("TemplateSelectionExpression", "")),
                )
            )
        integrations = {
            lid: self._integration(p, tuple(responses.get(lid, ()))) for lid, p in self.of_type(INTEGRATION)
        }
        two_way = {str(_ref(p["RouteId"])) for _, p in self.of_type(ROUTE_RESPONSE)}
        routes: dict[str, Route] = {}
        for lid, p in self.of_type(ROUTE):
            target = next((integrations[r] for r in _refs(p.get("Target")) if r in integrations), None)
            key = str(p["RouteKey"])
            routes[key] = Route(key, str(p.get("AuthorizationType", "NONE")), target, lid in two_way)
        return WebSocketApiDefinition(
            api_id=str(self._resolve({"Ref": self._api})),
            stage=stages[0],
            route_selection_expression=str(props.get("RouteSelectionExpression", "")),
            routes=routes,
        )

    def _integration(self, props: dict[str, Any], responses: tuple[IntegrationResponse, ...]) -> WsIntegration:
        kind = str(props.get("IntegrationType", "MOCK"))
        templates = {str(k): str(v) for k, v in (self._resolve(props.get("RequestTemplates")) or {}).items()}
        base = WsIntegration(
            "MOCK" if kind == "MOCK" else "UNSUPPORTED",
            request_templates=templates,
            template_selection=str(props.get("TemplateSelectionExpression", "")),
            passthrough=str(props.get("PassthroughBehavior", "WHEN_NO_MATCH")),
            responses=responses,
            timeout_seconds=int(props.get("TimeoutInMillis", 29000)) / 1000,
        )
        if kind != "AWS":
            return base
        uri = str(self._resolve(props.get("IntegrationUri", "")))
        match = re.fullmatch(r"arn:[^:]+:apigateway:([^:]+):([^:]+):action/([A-Za-z0-9]+)", uri)
        if match is None:
            return base
        region, service, action = match.groups()
        role = str(self._resolve(props.get("CredentialsArn", "")))
        return dataclasses.replace(
            base, type="AWS", service=service.split(".")[-1], action=action, region=region, credentials=role
        )


def websocket_apis(template: dict[str, Any]) -> list[str]:
    return [
        lid
        for lid, r in template.get("Resources", {}).items()
        if r.get("Type") == WEBSOCKET_API and r.get("Properties", {}).get("ProtocolType") == "WEBSOCKET"
    ]


def api_endpoint(api_id: str) -> str:
    """``ApiEndpoint`` of a WebSocket API as AWS reports it."""
    return f"wss://{api_id}.execute-api.{REGION}.amazonaws.com"


def callback_endpoint(api_id: str) -> str:
    """Where the management API (``@connections``) of that API is on AWS."""
    return f"https://{api_id}.execute-api.{REGION}.amazonaws.com"


def provision(provisioner: Any, logical_id: str, resource: dict[str, Any]) -> None:
    """``AWS::ApiGatewayV2::Api`` (WEBSOCKET) with its stage, integrations, routes and responses, in moto."""
    props = provisioner.resolve(resource.get("Properties", {}))
    if props.get("ProtocolType") != "WEBSOCKET":
        return  # an HTTP API is not emulated
    client = provisioner.clients("apigatewayv2")
    api_id = client.create_api(
        Name=props.get("Name") or provisioner.name(logical_id),
        ProtocolType="WEBSOCKET",
        RouteSelectionExpression=props["RouteSelectionExpression"],
    )["ApiId"]
    provisioner.construct(logical_id)
    attributes = provisioner.resources.attributes
    attributes[logical_id] = {"Ref": api_id, "ApiId": api_id, "ApiEndpoint": api_endpoint(api_id)}
    children = {
        lid: r
        for lid, r in provisioner.template["Resources"].items()
        if _ref(r.get("Properties", {}).get("ApiId")) == logical_id
    }

    def of(kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [(lid, r.get("Properties", {})) for lid, r in children.items() if r["Type"] == kind]

    for lid, p in of(STAGE):
        client.create_stage(ApiId=api_id, StageName=p["StageName"], AutoDeploy=bool(p.get("AutoDeploy", False)))
        attributes[lid] = {"Ref": p["StageName"]}
    for lid, p in of(INTEGRATION):
        resolved = provisioner.resolve(p)
        extra = {k: resolved[k] for k in ("IntegrationUri", "IntegrationMethod", "CredentialsArn") if k in resolved}
        created = client.create_integration(ApiId=api_id, IntegrationType=resolved["IntegrationType"], **extra)
        attributes[lid] = {"Ref": created["IntegrationId"]}
    for lid, p in of(ROUTE):
        target = next((f"integrations/{attributes[r]['Ref']}" for r in _refs(p.get("Target")) if r in attributes), None)
        created = client.create_route(
            ApiId=api_id,
            RouteKey=p["RouteKey"],
            AuthorizationType=p.get("AuthorizationType", "NONE"),
            **({"Target": target} if target else {}),
        )
        attributes[lid] = {"Ref": created["RouteId"]}
    for lid, p in of(ROUTE_RESPONSE):
        route = attributes[str(_ref(p["RouteId"]))]["Ref"]
        created = client.create_route_response(ApiId=api_id, RouteId=route, RouteResponseKey=p["RouteResponseKey"])
        attributes[lid] = {"Ref": created["RouteResponseId"]}
    for lid, p in of(INTEGRATION_RESPONSE):
        integration = attributes[str(_ref(p["IntegrationId"]))]["Ref"]
        created = client.create_integration_response(
            ApiId=api_id, IntegrationId=integration, IntegrationResponseKey=p["IntegrationResponseKey"]
        )
        attributes[lid] = {"Ref": created["IntegrationResponseId"]}
