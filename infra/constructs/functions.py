"""The Lambda functions: one role each, granted only what that function does.

Every function ships the same asset, the ``lambdas/`` folder (handlers, logic, task types; no CDK code), and
takes its libraries (Powertools, pydantic, the X-Ray SDK and their dependencies) from one layer of ours, built by
``make setup`` from the exact versions the tests and the local workers run (:mod:`infra.layer`); boto3/botocore
come with the runtime. See docs/DECISIONS.md.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import AssetHashType, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra import layer as dependency_layer

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
# The Powertools release the layer holds: pyproject.toml's pin (tests/infra/test_lambda_layer.py reads the layer).
POWERTOOLS_VERSION = dependency_layer.pyproject_pins()["aws-lambda-powertools"]
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "**/.pytest_cache", "**/.mypy_cache"]
METRICS_NAMESPACE = "taskrail"
CLAIM_CHECK_THRESHOLD_BYTES = 200_000
# Every caller invokes a function through this alias, never unqualified; CodeDeploy moves it to a new version by
# a canary: 10 % of invocations for 5 minutes, then all, rolled back if the function's alarms fire meanwhile
# (docs/DEPLOY.md).
LIVE_ALIAS = "live"
CANARY_CONFIG = codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    timeout: Duration
    memory_mb: int = 256
    description: str = ""


VALIDATE = FunctionSpec(
    "ValidateTaskFunction",
    "validate_task.handler.handler",
    Duration.seconds(30),
    description="Checks a task's type and parameters (claim check for large ones)",
)
PROCESS = FunctionSpec(
    "ProcessTaskFunction",
    "process_task.handler.handler",
    Duration.minutes(15),
    memory_mb=512,
    description="Runs a task through its task type and reports progress",
)
TASK_CHANGES = FunctionSpec(
    "TaskChangesFunction",
    "task_changes.handler.handler",
    Duration.seconds(30),
    description="Stops cancelled tasks' executions; delivers each outcome event and DLQ message once",
)
RECONCILE = FunctionSpec(
    "ReconcileTasksFunction",
    "reconcile_tasks.handler.handler",
    Duration.minutes(2),
    description="Starts stuck QUEUED tasks; fails RUNNING tasks whose execution ended",
)
# Live progress (infra/constructs/live.py): a batch of up to 10 stream records, each posted to a few connections with
# a 1-second budget per post (push_progress/config.py), well within 30 s.
PUSH_PROGRESS = FunctionSpec(
    "PushProgressFunction",
    "push_progress.handler.handler",
    Duration.seconds(30),
    description="Posts each change of a task's progress or status to its owner's WebSocket connections",
)


def dependency_layer_version(scope: Construct) -> lambda_.LayerVersion:
    """The layer :mod:`infra.layer` built. Its asset hash is the digest of the pins (checked against pyproject.toml
    and this virtualenv, else the synth stops with "run make setup"), so a synth does not fingerprint 14 MB."""
    layer_dir = dependency_layer.LAYER_DIR
    code = lambda_.Code.from_asset(
        str(layer_dir),
        exclude=[dependency_layer.STAMP_NAME],
        asset_hash=dependency_layer.built_digest(layer_dir),
        asset_hash_type=AssetHashType.CUSTOM,
    )
    return lambda_.LayerVersion(
        scope,
        "DependenciesLayer",
        code=code,
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description="The functions' libraries at pyproject.toml's pins (infra/layer.py)",
        removal_policy=RemovalPolicy.DESTROY,
    )


class Functions(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, environment: dict[str, str]) -> None:
        super().__init__(scope, construct_id)
        self._environment = environment
        self._code = lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=ASSET_EXCLUDES)
        self._layer = dependency_layer_version(self)
        self._all: list[lambda_.Function] = []
        self._live: dict[str, lambda_.Alias] = {}
        self._deployments: dict[str, codedeploy.LambdaDeploymentGroup] = {}
        # One CodeDeploy application and service role for every function's deployment group.
        self._deploy_application = codedeploy.LambdaApplication(self, "DeployApplication")
        self._deploy_role = iam.Role(
            self,
            "DeployRole",
            assumed_by=iam.ServicePrincipal("codedeploy.amazonaws.com"),
            description="CodeDeploy: shift the functions' live aliases, read their alarms",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AWSCodeDeployRoleForLambdaLimited")
            ],
        )
        self.validate = self._function(VALIDATE)
        self.process = self._function(PROCESS)

    @property
    def all(self) -> list[lambda_.Function]:
        return list(self._all)

    def live(self, function: lambda_.IFunction) -> lambda_.Alias:
        """The alias every caller invokes (a state machine task, a pipe, an API integration, a schedule)."""
        return self._live[function.node.id]

    def roll_back_on(self, alarms: Mapping[str, Sequence[cloudwatch.IAlarm]]) -> None:
        """Each function's deployment rolls back when one of its alarms (by function name) fires."""
        for name, group in self._deployments.items():
            for alarm in alarms.get(name, ()):
                group.add_alarm(alarm)

    def add(self, spec: FunctionSpec, *, environment: dict[str, str]) -> lambda_.Function:
        """A function whose wiring lives in another construct (the reconciler's): the same defaults and asset,
        the shared environment plus its own variables."""
        return self._function(spec, environment)

    def _function(self, spec: FunctionSpec, environment: dict[str, str] | None = None) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{spec.name}Logs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self,
            f"{spec.name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{spec.name}: least privilege, no managed policies",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            spec.name,
            description=spec.description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=spec.handler,
            code=self._code,
            layers=[self._layer],
            timeout=spec.timeout,
            memory_size=spec.memory_mb,
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            environment={
                **self._environment,
                "POWERTOOLS_SERVICE_NAME": spec.name.removesuffix("Function"),
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
                "CLAIM_CHECK_THRESHOLD_BYTES": str(CLAIM_CHECK_THRESHOLD_BYTES),
                **(environment or {}),
            },
        )
        self._all.append(function)
        self._live[spec.name] = lambda_.Alias(
            self, f"{spec.name}Live", alias_name=LIVE_ALIAS, version=function.current_version
        )
        self._deployments[spec.name] = codedeploy.LambdaDeploymentGroup(
            self,
            f"{spec.name}Deployment",
            alias=self._live[spec.name],
            application=self._deploy_application,
            role=self._deploy_role,
            deployment_config=CANARY_CONFIG,
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=True, deployment_in_alarm=True
            ),
        )
        return function
