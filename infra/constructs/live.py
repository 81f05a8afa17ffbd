"""Live progress: a WebSocket API whose routes write a Connections table directly (no Lambda), and a pipe from the
Tasks stream to the push function, which posts each change of a task's progress or status to its owner's
connections through the API's management endpoint.

The routes' mapping templates are the files in ``live_templates/``: ``%%NAME%%`` includes ``name.vtl`` from there
or, for the REST API's own rule of who the caller is (``%%OWNER%%``), from ``api_templates/`` (the same file, not a
copy); ``%%CONNECTION_MAX_SECONDS%%``, ``%%ALL_TASKS%%`` and ``%%SUBSCRIBED_MESSAGE%%`` are the contract's values,
``${ConnectionsTableName}`` the table's name. The local stack renders the same templates from the synthesized
template (taskrail/local/). docs/DECISIONS.md "Live progress".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Acknowledgment, CfnOutput, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_pipes as pipes
from aws_cdk.aws_dynamodb import ITable
from constructs import Construct, IConstruct

from infra.constructs.api import TEMPLATES_DIR as API_TEMPLATES_DIR
from infra.constructs.functions import PUSH_PROGRESS, Functions
from infra.constructs.pipe import OUTCOME_FILTER, StreamReading, stream_to_function_pipe
from infra.constructs.storage import secure_table
from infra.nag import _arn_field
from task_common import contract

TEMPLATES_DIR = Path(__file__).resolve().parent / "live_templates"
STAGE_NAME = "live"
INCLUDE = re.compile(r"%%([A-Z_]+)%%")
VALUES = {
    "CONNECTION_MAX_SECONDS": str(contract.CONNECTION_MAX_SECONDS),
    "ALL_TASKS": contract.ALL_TASKS,
    "SUBSCRIBED_MESSAGE": contract.SUBSCRIBED_MESSAGE,
}
# API Gateway picks a request template by the integration's TemplateSelectionExpression; a static "\$default"
# always selects the "$default" template (WebSocket APIs: "Setting up data mapping for WebSocket APIs").
DEFAULT_TEMPLATE = "$default"
TEMPLATE_SELECTION = "\\$default"
# Client frames (subscribe) and new connections: far above what one user's CLI or console sends, below the account's
# 500 new connections per second (docs/quotas.json, apigateway.websocket.new_connections_per_second).
THROTTLE_RATE_LIMIT = 100
THROTTLE_BURST_LIMIT = 200
# One JSON line per connect, message and disconnect ("Customizing HTTP API and WebSocket API access logs"): which
# route, which connection, the caller's stable principal and the DynamoDB integration's own status and error.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "connectionId": "$context.connectionId",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "user": "$context.identity.user",
    "userArn": "$context.identity.userArn",
    "requestTime": "$context.requestTime",
    "integrationStatus": "$context.integration.status",
    "integrationError": "$context.integration.error",
    "integrationLatency": "$context.integration.latencyMs",
}

# The push pipe's filters (ORed; EventBridge pattern rules). The stream has NEW_IMAGE only, and a pattern cannot
# compare two fields, so "progress or status changed" is read from the new image: a MODIFY of a task that is not
# finished (the claim, each progress write, a cancel, a replay's requeue), or the terminal write itself, which sets
# outcomePending to the status (the outbox; its mark removes it, so the mark's MODIFY is not pushed, nor are the
# reconciler's later writes on a finished task). INSERT (the submit: the client has the answer) and REMOVE are not.
# A write on a running task that changes neither (a diagnostic counter) still passes: the message repeats the state.
UNFINISHED_FILTER = {
    "eventName": ["MODIFY"],
    "dynamodb": {
        "NewImage": {"status": {"S": [s for s in contract.ALL_STATUSES if s not in contract.OUTCOME_STATUSES]}}
    },
}
PUSH_FILTERS = (UNFINISHED_FILTER, OUTCOME_FILTER)
# Records in stream order, one batch per shard at a time (ParallelizationFactor 1): a task's messages leave in the
# order of its writes. Up to 10 records per invocation, at once (no batching window).
PUSH_BATCH_SIZE = 10
# A batch is retried twice at most and a record older than a minute is dropped: a late progress message is worth
# less than the next one, and a stuck batch must not hold the shard (the client polls as a fallback). No DLQ: a
# dropped progress message needs no replay.
PUSH_MAXIMUM_RETRY_ATTEMPTS = 2
PUSH_MAXIMUM_RECORD_AGE_SECONDS = 60


def acknowledge(scope: IConstruct | None, finding: str, reason: str) -> None:
    """A cdk-nag IAM5 finding of ``scope``'s policies, acknowledged there only (not stack-wide, as infra/nag.py)."""
    assert scope is not None
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[{finding}]", reason=reason))


def load_template(name: str, table_name: str) -> str:
    """``name`` as the stack deploys it: includes expanded, the Connections table's name in place."""

    def include(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in VALUES:
            return VALUES[key]
        own = TEMPLATES_DIR / f"{key.lower()}.vtl"
        path = own if own.exists() else API_TEMPLATES_DIR / f"{key.lower()}.vtl"
        return INCLUDE.sub(include, path.read_text().strip())

    return INCLUDE.sub(include, (TEMPLATES_DIR / name).read_text()).replace("${ConnectionsTableName}", table_name)


@dataclass(frozen=True)
class LiveRoute:
    """One route: its key, the DynamoDB action its integration calls, and its templates."""

    key: str
    construct_id: str
    action: str
    template: str
    authorization: str = "NONE"
    two_way: bool = False  # the client gets the integration's answer (RouteResponse + IntegrationResponse)


ROUTES = (
    # Only $connect can be authorized on a WebSocket API; the other routes run on the connection it admitted.
    LiveRoute("$connect", "Connect", "PutItem", "connect", authorization="AWS_IAM"),
    LiveRoute("$disconnect", "Disconnect", "DeleteItem", "disconnect"),
    LiveRoute(contract.SUBSCRIBE_ACTION, "Subscribe", "UpdateItem", "subscribe", two_way=True),
)


class LiveProgress(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, tasks_table: ITable, functions: Functions) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.connections_table = secure_table(
            self,
            "ConnectionsTable",
            partition_key="connectionId",
            time_to_live_attribute="expiresAt",
            # Connections live two hours at most: nothing in it outlives a stack.
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.owner_index = contract.CONNECTIONS_OWNER_INDEX
        # The push reads a task owner's connections and their subscription, nothing else.
        self.connections_table.add_global_secondary_index(
            index_name=self.owner_index,
            partition_key=dynamodb.Attribute(name="ownerId", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="connectionId", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=["taskId"],
        )

        self.api = apigwv2.CfnApi(
            self,
            "WebSocketApi",
            name=f"{stack.stack_name}-live",
            description="taskrail: live progress of the caller's tasks (IAM-authorized connect, storage first)",
            protocol_type="WEBSOCKET",
            route_selection_expression="$request.body.action",
        )
        for route in ROUTES:
            self._add_route(route)

        access_logs = logs.LogGroup(
            self, "WebSocketAccessLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        self.stage = apigwv2.CfnStage(
            self,
            "Stage",
            api_id=self.api.ref,
            stage_name=STAGE_NAME,
            auto_deploy=True,
            access_log_settings=apigwv2.CfnStage.AccessLogSettingsProperty(
                destination_arn=access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FIELDS)
            ),
            default_route_settings=apigwv2.CfnStage.RouteSettingsProperty(
                throttling_rate_limit=THROTTLE_RATE_LIMIT, throttling_burst_limit=THROTTLE_BURST_LIMIT
            ),
        )
        # Access logs go through the region's API Gateway logging role (the REST API's AWS::ApiGateway::Account).
        for account in [c for c in stack.node.find_all() if isinstance(c, apigw.CfnAccount)]:
            self.stage.node.add_dependency(account)

        domain = f"{self.api.ref}.execute-api.{stack.region}.{stack.url_suffix}/{STAGE_NAME}"
        self.url = f"wss://{domain}"
        self.callback_url = f"https://{domain}"
        self.push_function = self._push_function(functions)
        self.push_live = functions.live(self.push_function)
        self._push_pipe(tasks_table, functions)
        CfnOutput(stack, contract.Output.WEBSOCKET_URL.value, value=self.url)

    def _add_route(self, route: LiveRoute) -> None:
        stack = Stack.of(self)
        role = iam.Role(
            self,
            f"{route.construct_id}IntegrationRole",
            assumed_by=iam.ServicePrincipal(
                "apigateway.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"The {route.key} route's integration: dynamodb:{route.action} on the Connections table only",
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=[f"dynamodb:{route.action}"], resources=[self.connections_table.table_arn])
        )
        table_name = self.connections_table.table_name
        integration = apigwv2.CfnIntegration(
            self,
            f"{route.construct_id}Integration",
            api_id=self.api.ref,
            integration_type="AWS",
            integration_method="POST",
            integration_uri=f"arn:{stack.partition}:apigateway:{stack.region}:dynamodb:action/{route.action}",
            credentials_arn=role.role_arn,
            passthrough_behavior="NEVER",
            template_selection_expression=TEMPLATE_SELECTION,
            request_templates={DEFAULT_TEMPLATE: load_template(f"{route.template}.request.vtl", table_name)},
        )
        cfn_route = apigwv2.CfnRoute(
            self,
            f"{route.construct_id}Route",
            api_id=self.api.ref,
            route_key=route.key,
            authorization_type=route.authorization,
            target=f"integrations/{integration.ref}",
            route_response_selection_expression="$default" if route.two_way else None,
        )
        if route.authorization == "NONE":
            # cdk-nag's APIG4 wants every route authorized; a WebSocket API authorizes its $connect route only.
            Validations.of(cfn_route).acknowledge(
                Acknowledgment(
                    id="AwsSolutions::AwsSolutions-APIG4",
                    reason=(
                        "A WebSocket API can authorize only its $connect route, which is AWS_IAM here; this route "
                        "runs on a connection that route admitted (API Gateway WebSocket route authorization)."
                    ),
                )
            )
        if not route.two_way:
            return
        apigwv2.CfnRouteResponse(
            self,
            f"{route.construct_id}RouteResponse",
            api_id=self.api.ref,
            route_id=cfn_route.ref,
            route_response_key="$default",
        )
        for key, template in (
            ("$default", f"{route.template}.response.vtl"),
            # DynamoDB's refusals (a 4xx: the row is gone, a throttle) and its failures: the client hears of them.
            ("/4\\d{2}/", f"{route.template}.error.vtl"),
            ("/5\\d{2}/", f"{route.template}.error.vtl"),
        ):
            apigwv2.CfnIntegrationResponse(
                self,
                f"{route.construct_id}IntegrationResponse{'Default' if key == '$default' else key[1]}xx",
                api_id=self.api.ref,
                integration_id=integration.ref,
                integration_response_key=key,
                template_selection_expression=TEMPLATE_SELECTION,
                response_templates={DEFAULT_TEMPLATE: load_template(template, table_name)},
            )

    def _push_function(self, functions: Functions) -> lambda_.Function:
        """Queries the owner index, deletes gone connections' rows, posts to this API's stage's connections."""
        stack = Stack.of(self)
        function = functions.add(
            PUSH_PROGRESS,
            environment={
                "CONNECTIONS_TABLE_NAME": self.connections_table.table_name,
                contract.CONNECTIONS_OWNER_INDEX_ENV: self.owner_index,
                "WEBSOCKET_CALLBACK_URL": self.callback_url,
            },
        )
        connections = stack.format_arn(
            service="execute-api", resource=self.api.ref, resource_name=f"{STAGE_NAME}/POST/@connections/*"
        )
        for actions, resources in (
            (["dynamodb:Query"], [f"{self.connections_table.table_arn}/index/{self.owner_index}"]),
            (["dynamodb:DeleteItem"], [self.connections_table.table_arn]),
            (["execute-api:ManageConnections"], [connections]),
        ):
            function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))
        partition, region, account = (
            _arn_field(stack.partition, "AWS::Partition"),
            _arn_field(stack.region, "AWS::Region"),
            _arn_field(stack.account, "AWS::AccountId"),
        )
        api_id = stack.get_logical_id(self.api)
        acknowledge(
            function.role,
            f"Resource::arn:{partition}:execute-api:{region}:{account}:<{api_id}>/{STAGE_NAME}/POST/@connections/*",
            "PostToConnection (and DeleteConnection's rule) on the connections of this API's live stage only: "
            "connection ids are API Gateway's, known only when a client connects.",
        )
        return function

    def _push_pipe(self, tasks_table: ITable, functions: Functions) -> pipes.CfnPipe:
        # From the newest record, in batches, in order (one batch per shard), retried briefly: a push that is
        # late is worth nothing, so no DLQ (a client that missed one reads the task).
        return stream_to_function_pipe(
            self,
            "PushProgress",
            description="Each change of a task's progress or status to the push function, in stream order",
            table=tasks_table,
            target=self.push_live,
            filters=tuple(PUSH_FILTERS),
            stream=StreamReading(
                starting_position="LATEST",
                batch_size=PUSH_BATCH_SIZE,
                maximum_retry_attempts=PUSH_MAXIMUM_RETRY_ATTEMPTS,
                maximum_record_age_in_seconds=PUSH_MAXIMUM_RECORD_AGE_SECONDS,
            ),
        )
