"""Users and profiles (issue 16 §1): the Users and Profiles tables, GET /me's function, the access log's subscriber
that signs in every authenticated caller of any route, and the Profiles stream's function that turns a notification
preference into an email subscription on the notifications topic.

Both tables are keyed by ``userId``, the owner identity of the API's owner.vtl (a task's ``userId``), encrypted and
point-in-time recoverable like the Tasks table. Only Profiles has a stream: the preference a user writes with
PUT /me/profile reaches the function through a pipe (as the Tasks stream reaches its functions), at least once and
in order per user. docs/DECISIONS.md "Users and profiles".
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.constructs.functions import Functions, FunctionSpec
from infra.constructs.pipe import StreamReading, stream_to_function_pipe
from infra.constructs.storage import secure_table

ME = FunctionSpec(
    "MeFunction",
    "users.me_handler.handler",
    Duration.seconds(10),
    description="GET /me: the caller's user record (created on the first request) and profile",
)
USER_SEEN = FunctionSpec(
    "UserSeenFunction",
    "users.seen_handler.handler",
    Duration.seconds(30),
    description="Signs in each authenticated API caller from the access log: the user record once, lastLogin hourly",
)
# The access log lines of authenticated requests (with a user: API Gateway writes "-" for a variable without a
# value) that IAM did not refuse (403: not one of the API's users); a request answered 404 or 400 signed in too.
SEEN_FILTER_PATTERN = logs.FilterPattern.all(
    logs.FilterPattern.string_value("$.user", "!=", "-"),
    logs.FilterPattern.string_value("$.status", "!=", "403"),
)
PROFILE_CHANGES = FunctionSpec(
    "ProfileChangesFunction",
    "users.profile_changes_handler.handler",
    Duration.seconds(30),
    description="A profile's notification preference: subscribes or unsubscribes the user's email on the topic",
)
# Every change of a profile (INSERT, MODIFY, REMOVE): the function compares the old and new preferences itself, since
# a pipe filter cannot compare two images.
PROFILE_FILTER = {"eventName": ["INSERT", "MODIFY", "REMOVE"]}


def _table(scope: Construct, construct_id: str, removal_policy: RemovalPolicy, **kwargs: object) -> dynamodb.Table:
    return secure_table(
        scope,
        construct_id,
        partition_key="userId",
        deletion_protection=removal_policy == RemovalPolicy.RETAIN,
        removal_policy=removal_policy,
        **kwargs,
    )


class UsersAndProfiles(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        removal_policy: RemovalPolicy,
        functions: Functions,
        topic: sns.ITopic,
        dead_letter_queue: sqs.IQueue,
        access_logs: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        self.users_table = _table(self, "UsersTable", removal_policy)
        self.profiles_table = _table(
            self, "ProfilesTable", removal_policy, stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES
        )
        tables = {
            "USERS_TABLE_NAME": self.users_table.table_name,
            "PROFILES_TABLE_NAME": self.profiles_table.table_name,
        }
        # GET /me reads both items and writes only what is missing or an hour old (users/me.py).
        self.me_function = functions.add(ME, environment=tables)
        self._allow(
            self.me_function,
            ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            [self.users_table.table_arn, self.profiles_table.table_arn],
        )
        self.user_seen_function = self._user_seen(functions, tables, access_logs)
        self.profile_changes_function = functions.add(
            PROFILE_CHANGES,
            environment={"USERS_TABLE_NAME": self.users_table.table_name, "NOTIFICATIONS_TOPIC_ARN": topic.topic_arn},
        )
        # The pipe invokes its live alias (docs/DEPLOY.md), and may invoke nothing else of it.
        self._profile_changes_live = functions.live(self.profile_changes_function)
        # The subscription it made is remembered on the user's record (never on the profile, whose stream it reads).
        self._allow(
            self.profile_changes_function, ["dynamodb:GetItem", "dynamodb:UpdateItem"], [self.users_table.table_arn]
        )
        # On the notifications topic only: SNS authorizes a subscription's calls against its topic.
        self._allow(
            self.profile_changes_function,
            ["sns:Subscribe", "sns:SetSubscriptionAttributes", "sns:Unsubscribe"],
            [topic.topic_arn],
        )
        self.profile_pipe = self._profile_pipe(dead_letter_queue)

    def _user_seen(self, functions: Functions, tables: dict[str, str], access_logs: logs.ILogGroup) -> lambda_.Function:
        """The access log's authenticated lines, in batches, to the function's live alias (CloudWatch Logs invokes it
        asynchronously: its permission names the log group as the source); the same reads and conditional writes as
        GET /me (users/sign_in.py)."""
        function = functions.add(USER_SEEN, environment=tables)
        self._allow(
            function,
            ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            [self.users_table.table_arn, self.profiles_table.table_arn],
        )
        logs.SubscriptionFilter(
            self,
            "UserSeenSubscription",
            log_group=access_logs,
            destination=log_destinations.LambdaDestination(functions.live(function)),
            filter_pattern=SEEN_FILTER_PATTERN,
        )
        return function

    @staticmethod
    def _allow(function: lambda_.IFunction, actions: list[str], resources: list[str]) -> None:
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))

    def _profile_pipe(self, dead_letter_queue: sqs.IQueue) -> pipes.CfnPipe:
        """The Profiles stream to the function's live alias, as the Tasks stream reaches its functions: batches of
        one, retried, then the pipe DLQ."""
        return stream_to_function_pipe(
            self,
            "ProfileChanges",
            description="Profile changes to the function that keeps each user's email subscription",
            table=self.profiles_table,
            target=self._profile_changes_live,
            filters=(PROFILE_FILTER,),
            stream=StreamReading(),
            dead_letter_queue=dead_letter_queue,
        )
