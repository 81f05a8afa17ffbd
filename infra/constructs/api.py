"""The REST API: direct DynamoDB integrations (no Lambda), IAM-authenticated, validated, throttled.

Mapping templates are the files in ``api_templates/``: the same files render locally through
``taskrail.local.vtl``. ``${TasksTableName}`` in a template becomes the table's name at synth time and
``${TasksUserIndexName}`` the name of its index by owner (the Storage construct's); ``%%NAME%%`` includes
``name.vtl`` (``%%TASK_FIELDS%%`` is ``task_fields.vtl``; API Gateway's VTL has no #parse), and
``%%MAX_STORED_PARAMS_BYTES%%`` is :data:`MAX_STORED_PARAMS_BYTES`, ``%%PENDING_SHARD_ATTRIBUTE%%`` and
``%%PENDING_SHARD_PATTERN%%`` the reconciler's pending index's key attribute and a regex of its shards (the
contract's). The statuses are the contract's too: ``%%STATUS_QUEUED%%`` (one per status) is the status's value,
and the cancel condition is ``CANCELLABLE_STATUSES``: ``%%CANCELLABLE_REFERENCES%%`` its value references
(``:queued, :running``), ``%%CANCELLABLE_VALUES%%`` their ExpressionAttributeValues, ``%%CANCELLABLE_STATUSES%%``
the statuses in words (``QUEUED or RUNNING``).
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.constructs.api_limits import MAX_STORED_PARAMS_BYTES
from infra.constructs.functions import Functions, FunctionSpec
from task_common.contract import (
    ALL_STATUSES,
    CANCELLABLE_STATUSES,
    PENDING_SHARD_ATTRIBUTE,
    PENDING_SHARDS,
    RESULT_KEY_FORMAT,
    USER_INDEX,
    USERS_PREFIX,
    Status,
    result_body_key,
)
from task_types import known_types

TEMPLATES_DIR = Path(__file__).resolve().parent / "api_templates"
STAGE_NAME = "v1"
# Storage first at AWS scale: the stage accepts faster than the lifecycle sustains (250 tasks/s, the state-transition
# bucket, `taskrail capacity`), so a burst waits in the table, not at its clients as 429s; and no faster than a new
# on-demand table absorbs with the whole lifecycle's writes (4,000 write units/s of warm throughput over 10 per task:
# 400 tasks/s), beyond which DynamoDB would throttle every write. At 200 the stage was the design's bottleneck.
THROTTLE_RATE_LIMIT = 400
THROTTLE_BURST_LIMIT = 800
JSON = "application/json"
# GET /tasks/{taskId}/result: the owner check needs the task's item, the answer an S3 read (and a presigned link
# for a large result), so it is a function behind the API (docs/DECISIONS.md "The result endpoint").
READ_RESULT = FunctionSpec(
    "ReadResultFunction",
    "read_result.handler.handler",
    Duration.seconds(10),
    description="GET /tasks/{taskId}/result: the owner's result inline, or a time-limited link to a large one",
)
RESULT_URL_SECONDS = 300

SUBMIT_TASK_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="TaskSubmission",
    type=apigw.JsonSchemaType.OBJECT,
    required=["type", "params"],
    additional_properties=False,
    properties={
        # The registry's types (lambdas/task_types/, discovered): an unknown type is refused at the edge with 400;
        # a known type's params are checked by Validate, where the type's model lives.
        "type": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, enum=known_types()),
        "params": apigw.JsonSchema(type=apigw.JsonSchemaType.OBJECT),
    },
)


# PUT /me/profile: every field bounded, so a profile item stays small by construction. The avatar's own-prefix check
# needs the caller's identity, so it is the request template's (update_profile.request.vtl); the pattern here
# only gives it the users/{id}/{name} shape.
PROFILE_FULL_NAME_MAX = 200
PROFILE_AVATAR_MAX = 1024
PROFILE_EMAIL_MAX = 254
PROFILE_UPDATE_SCHEMA = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="ProfileUpdate",
    type=apigw.JsonSchemaType.OBJECT,
    additional_properties=False,
    min_properties=1,
    properties={
        "fullName": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, min_length=1, max_length=PROFILE_FULL_NAME_MAX),
        "avatar": apigw.JsonSchema(
            type=apigw.JsonSchemaType.STRING,
            min_length=1,
            max_length=PROFILE_AVATAR_MAX,
            pattern=f"^{USERS_PREFIX}[^/]+/[^/].*$",
        ),
        "preferences": apigw.JsonSchema(
            type=apigw.JsonSchemaType.OBJECT,
            additional_properties=False,
            properties={
                "notifications": apigw.JsonSchema(
                    type=apigw.JsonSchemaType.OBJECT,
                    additional_properties=False,
                    properties={
                        "email": apigw.JsonSchema(
                            type=apigw.JsonSchemaType.STRING,
                            max_length=PROFILE_EMAIL_MAX,
                            pattern="^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$",
                        ),
                        "onFailed": apigw.JsonSchema(type=apigw.JsonSchemaType.BOOLEAN),
                        "onSucceeded": apigw.JsonSchema(type=apigw.JsonSchemaType.BOOLEAN),
                    },
                ),
                "timezone": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, max_length=64),
                "theme": apigw.JsonSchema(type=apigw.JsonSchemaType.STRING, max_length=32),
            },
        ),
    },
)


CLOUDWATCH_ROLE_CONTEXT = "apiGatewayCloudWatchRole"
# One JSON line per request ("Variables for access logging for API Gateway"): the standard fields, plus the
# caller's stable principal and the integration's own status, error and latency, so that a 503 of a throttled
# table can be told from a 503 of a mapping-template mistake.
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "user": "$context.identity.user",
    "userArn": "$context.identity.userArn",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "integrationStatus": "$context.integration.status",
    "integrationError": "$context.integration.error",
    "integrationLatency": "$context.integration.latency",
}

INCLUDE = re.compile(r"%%([A-Z_]+)%%")
CANCELLABLE = [status for status in ALL_STATUSES if status in CANCELLABLE_STATUSES]  # in the contract's order
# One ExpressionAttributeValues entry per line, at the indentation of cancel_task.request.vtl's.
_CANCELLABLE_VALUES = ",\n    ".join(f'":{status.lower()}": {{"S": "{status}"}}' for status in CANCELLABLE)
VALUES = {
    "MAX_STORED_PARAMS_BYTES": str(MAX_STORED_PARAMS_BYTES),
    "PENDING_SHARD_ATTRIBUTE": PENDING_SHARD_ATTRIBUTE,
    "PENDING_SHARD_PATTERN": f"^[{''.join(PENDING_SHARDS)}]$",
    **{f"STATUS_{status.name}": status.value for status in Status},
    "CANCELLABLE_REFERENCES": ", ".join(f":{status.lower()}" for status in CANCELLABLE),
    "CANCELLABLE_VALUES": _CANCELLABLE_VALUES,
    "CANCELLABLE_STATUSES": " or ".join(CANCELLABLE),
}


def load_template(
    name: str, table_name: str, *, user_index: str = USER_INDEX, profiles_table_name: str = "ProfilesTable"
) -> str:
    """``name`` as the stack deploys it: includes expanded, the tables' and the index's names in place."""

    def include(match: re.Match[str]) -> str:
        key = match.group(1)
        if key in VALUES:
            return VALUES[key]
        return INCLUDE.sub(include, (TEMPLATES_DIR / f"{key.lower()}.vtl").read_text().strip())

    text = INCLUDE.sub(include, (TEMPLATES_DIR / name).read_text())
    text = text.replace("${TasksTableName}", table_name).replace("${TasksUserIndexName}", user_index)
    return text.replace("${ProfilesTableName}", profiles_table_name)


@dataclass(frozen=True)
class Route:
    """One method: a DynamoDB action, its templates, and the status codes it can answer with."""

    method: str
    action: str
    template: str
    success_status: str
    error_template: str | None = None
    path_params: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ("400", "404", "409", "503")
    query_params: tuple[str, ...] = ()


class TaskApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.ITable,
        user_index: str,
        functions: Functions,
        results_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        self._table = table
        self._user_index = user_index
        # One JSON line per request; the users' subscriber (infra/constructs/users.py) signs each caller in from it.
        self.access_logs = access_logs = logs.LogGroup(
            self, "AccessLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        own_logging_role = self.node.try_get_context(CLOUDWATCH_ROLE_CONTEXT) != "existing"
        self.api = apigw.RestApi(
            self,
            "TasksApi",
            description="taskrail: submit, read, list and cancel tasks (storage first)",
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # The role API Gateway logs with is a per-region account setting (AWS::ApiGateway::Account, one per
            # region and account): every REST API of the region logs through it. Deleting the stack must not
            # delete the role it points to, so it is retained; an account that has one already deploys with
            # -c apiGatewayCloudWatchRole=existing and keeps its own (docs/AWS-REVIEW.md, API Gateway).
            cloud_watch_role=own_logging_role,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN if own_logging_role else None,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=THROTTLE_RATE_LIMIT,
                throttling_burst_limit=THROTTLE_BURST_LIMIT,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
            ),
        )
        self.api.add_gateway_response(
            "BadRequestBody",
            type=apigw.ResponseType.BAD_REQUEST_BODY,
            status_code="400",
            templates={JSON: '{"message": "invalid request body: $context.error.validationErrorString"}'},
        )
        self.api.add_gateway_response(
            "BadRequestParameters",
            type=apigw.ResponseType.BAD_REQUEST_PARAMETERS,
            status_code="400",
            templates={JSON: '{"message": "invalid request: $context.error.validationErrorString"}'},
        )
        self._validator = apigw.RequestValidator(
            self,
            "Validator",
            rest_api=self.api,
            validate_request_body=True,
            validate_request_parameters=True,
        )
        self._submit_model = self.api.add_model(
            "TaskSubmissionModel", content_type=JSON, model_name="TaskSubmission", schema=SUBMIT_TASK_SCHEMA
        )
        self._role = iam.Role(
            self,
            "IntegrationRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            description="API Gateway to the Tasks table and the result function, one action per route",
        )

        tasks = self.api.root.add_resource("tasks")
        task = tasks.add_resource("{taskId}")
        self._add_route(
            tasks,
            Route(
                "POST",
                "UpdateItem",  # fills a new task's attributes, or compares a retry's body (submit_task.request.vtl)
                "submit_task",
                "202",
                error_template="submit_task",
                statuses=("400", "404", "409", "413", "422", "503"),
            ),
        )
        self._add_route(tasks, Route("GET", "Query", "list_tasks", "200", query_params=("status", "limit", "next")))
        self._add_route(task, Route("GET", "GetItem", "get_task", "200", path_params=("taskId",)))
        self._add_route(
            task,
            Route(
                "DELETE",
                "UpdateItem",
                "cancel_task",
                "202",
                error_template="cancel_task",
                path_params=("taskId",),
            ),
        )
        self.read_result = self._result_function(functions, results_bucket)
        self._add_function_route(
            task.add_resource("result"),
            Route("GET", "Invoke", "read_result", "200", error_template="read_result", path_params=("taskId",)),
            functions.live(self.read_result),
        )

    def _result_function(self, functions: Functions, bucket: s3.IBucket) -> lambda_.Function:
        """Reads one item (GetItem) and a task's result objects, nothing else; presigns with its own role."""
        function = functions.add(READ_RESULT, environment={"RESULT_URL_SECONDS": str(RESULT_URL_SECONDS)})
        for actions, resources in (
            (["dynamodb:GetItem"], [self._table.table_arn]),
            (
                ["s3:GetObject"],
                [bucket.arn_for_objects(RESULT_KEY_FORMAT.format("*")), bucket.arn_for_objects(result_body_key("*"))],
            ),
        ):
            function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))
        return function

    def _add_function_route(self, resource: apigw.Resource, route: Route, function: lambda_.IFunction) -> apigw.Method:
        """A Lambda custom integration: the request template hands the function what it needs, the function answers
        ``{"statusCode", "body"}``; a function error (its errorMessage matches ".+") is a retryable 503."""
        self._role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn])
        )
        table_name = self._table.table_name

        def template(name: str) -> str:
            return load_template(name, table_name, user_index=self._user_index)

        integration = apigw.AwsIntegration(
            service="lambda",
            path=f"2015-03-31/functions/{function.function_arn}/invocations",
            integration_http_method="POST",
            options=apigw.IntegrationOptions(
                credentials_role=self._role,
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_templates={JSON: template(f"{route.template}.request.vtl")},
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code=route.success_status,
                        response_templates={JSON: template(f"{route.template}.response.vtl")},
                    ),
                    apigw.IntegrationResponse(
                        status_code="503",
                        selection_pattern=".+",
                        response_templates={JSON: template(f"{route.error_template}.error.vtl")},
                    ),
                ],
            ),
        )
        return resource.add_method(
            route.method,
            integration,
            request_validator=self._validator,
            request_parameters={f"method.request.path.{name}": True for name in route.path_params},
            method_responses=[
                apigw.MethodResponse(status_code=status) for status in (route.success_status, *route.statuses)
            ],
        )

    def _add_route(
        self,
        resource: apigw.Resource,
        route: Route,
        *,
        table: dynamodb.ITable | None = None,
        model: apigw.IModel | None = None,
    ) -> apigw.Method:
        """A direct DynamoDB integration on the Tasks table, or on ``table`` (validating the body by ``model``)."""
        on_index = route.action == "Query"
        table = table or self._table
        self._role.add_to_policy(
            iam.PolicyStatement(
                actions=[f"dynamodb:{route.action}"],
                resources=[f"{table.table_arn}/index/{self._user_index}" if on_index else table.table_arn],
            )
        )
        table_name, profiles_table_name = self._table.table_name, table.table_name

        def template(name: str) -> str:
            return load_template(name, table_name, user_index=self._user_index, profiles_table_name=profiles_table_name)

        error_template = template(f"{route.error_template or 'dynamodb'}.error.vtl")
        integration = apigw.AwsIntegration(
            service="dynamodb",
            action=route.action,
            options=apigw.IntegrationOptions(
                credentials_role=self._role,
                passthrough_behavior=apigw.PassthroughBehavior.NEVER,
                request_templates={JSON: template(f"{route.template}.request.vtl")},
                integration_responses=[
                    apigw.IntegrationResponse(
                        status_code=route.success_status,
                        response_templates={JSON: template(f"{route.template}.response.vtl")},
                    ),
                    apigw.IntegrationResponse(
                        status_code="400",
                        selection_pattern="4\\d{2}",
                        response_templates={JSON: error_template},
                    ),
                    apigw.IntegrationResponse(
                        status_code="503",
                        selection_pattern="5\\d{2}",
                        response_templates={JSON: template("service_error.vtl")},
                    ),
                ],
            ),
        )
        request_parameters = {f"method.request.path.{name}": True for name in route.path_params}
        request_parameters |= {f"method.request.querystring.{name}": False for name in route.query_params}
        if route.method == "POST":
            request_parameters["method.request.header.Idempotency-Key"] = False
        return resource.add_method(
            route.method,
            integration,
            request_validator=self._validator,
            request_parameters=request_parameters,
            request_models={JSON: model} if model else ({JSON: self._submit_model} if route.method == "POST" else None),
            method_responses=[
                apigw.MethodResponse(status_code=status) for status in (route.success_status, *route.statuses)
            ],
        )

    def add_user_routes(self, *, profiles_table: dynamodb.ITable, me_function: lambda_.IFunction) -> None:
        """GET /me (the caller's user record and profile: a function, docs/DECISIONS.md "Users and profiles") and
        PUT /me/profile (a direct UpdateItem of the caller's own profile)."""
        me = self.api.root.add_resource("me")
        self._add_function_route(
            me, Route("GET", "Invoke", "read_me", "200", error_template="read_me", statuses=("400", "503")), me_function
        )
        profile_model = self.api.add_model(
            "ProfileUpdateModel", content_type=JSON, model_name="ProfileUpdate", schema=PROFILE_UPDATE_SCHEMA
        )
        self._add_route(
            me.add_resource("profile"),
            Route(
                "PUT", "UpdateItem", "update_profile", "200", error_template="update_profile", statuses=("400", "503")
            ),
            table=profiles_table,
            model=profile_model,
        )
