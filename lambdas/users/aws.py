"""boto3 adapters of the users ports: conditional DynamoDB writes, the topic's email subscriptions."""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from task_common.aws import client
from users.models import USER_ACTIVE, ProfileRecord, UserRecord
from users.ports import EmailSubscriptions, SubscriptionRecords, UserDirectory

_DESERIALIZER = TypeDeserializer()
_CONDITION_FAILED = "ConditionalCheckFailedException"
_GONE_SUBSCRIPTION_CODES = {"NotFound", "NotFoundException", "InvalidParameter"}
FILTER_POLICY_SCOPE = "MessageBody"


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _DESERIALIZER.deserialize(value) for name, value in item.items()}


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == _CONDITION_FAILED


class DynamoDBUserDirectory(UserDirectory):
    def __init__(self, users_table: str, profiles_table: str, dynamodb_client: Any | None = None) -> None:
        self.users_table, self.profiles_table = users_table, profiles_table
        self._client = dynamodb_client

    @property
    def _dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    def _get(self, table: str, user_id: str) -> dict[str, Any] | None:
        item = self._dynamodb.get_item(TableName=table, Key={"userId": {"S": user_id}}, ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def user(self, user_id: str) -> UserRecord | None:
        item = self._get(self.users_table, user_id)
        return UserRecord.model_validate(item) if item else None

    def profile(self, user_id: str) -> ProfileRecord | None:
        item = self._get(self.profiles_table, user_id)
        return ProfileRecord.model_validate(item) if item else None

    def _update(self, table: str, user_id: str, **request: Any) -> dict[str, Any] | None:
        """The item after the update, or None when its condition failed (another request wrote first)."""
        try:
            response = self._dynamodb.update_item(
                TableName=table, Key={"userId": {"S": user_id}}, ReturnValues="ALL_NEW", **request
            )
        except ClientError as error:
            if _condition_failed(error):
                return None
            raise
        return _plain(response["Attributes"])

    def create_user(self, user_id: str, username: str, *, at: str) -> UserRecord:
        item = self._update(
            self.users_table,
            user_id,
            UpdateExpression=(
                "SET username = if_not_exists(username, :username), #status = if_not_exists(#status, :active), "
                "createdAt = if_not_exists(createdAt, :at), updatedAt = if_not_exists(updatedAt, :at)"
            ),
            ConditionExpression="attribute_not_exists(createdAt)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":username": {"S": username}, ":active": {"S": USER_ACTIVE}, ":at": {"S": at}},
        )
        if item is None:  # a concurrent first request created it
            item = self._get(self.users_table, user_id) or {"userId": user_id}
        return UserRecord.model_validate(item)

    def record_login(self, user_id: str, *, at: str, unless_since: str) -> ProfileRecord:
        item = self._update(
            self.profiles_table,
            user_id,
            UpdateExpression="SET lastLogin = :at",
            ConditionExpression="attribute_not_exists(lastLogin) OR lastLogin < :since",
            ExpressionAttributeValues={":at": {"S": at}, ":since": {"S": unless_since}},
        )
        if item is None:  # a concurrent request recorded it
            item = self._get(self.profiles_table, user_id) or {"userId": user_id}
        return ProfileRecord.model_validate(item)


class DynamoDBSubscriptionRecords(SubscriptionRecords):
    def __init__(self, users_table: str, dynamodb_client: Any | None = None) -> None:
        self.users_table = users_table
        self._client = dynamodb_client

    @property
    def _dynamodb(self) -> Any:
        return self._client or client("dynamodb")

    def subscription_of(self, user_id: str) -> tuple[str, str] | None:
        item = self._dynamodb.get_item(
            TableName=self.users_table, Key={"userId": {"S": user_id}}, ConsistentRead=True
        ).get("Item")
        record = UserRecord.model_validate(_plain(item)) if item else None
        if record is None or not record.email or not record.notification_subscription_arn:
            return None
        return record.email, record.notification_subscription_arn

    def remember(self, user_id: str, email: str, subscription_arn: str, *, at: str) -> None:
        self._dynamodb.update_item(
            TableName=self.users_table,
            Key={"userId": {"S": user_id}},
            UpdateExpression="SET email = :email, notificationSubscriptionArn = :arn, updatedAt = :at",
            ExpressionAttributeValues={":email": {"S": email}, ":arn": {"S": subscription_arn}, ":at": {"S": at}},
        )

    def forget(self, user_id: str, *, at: str) -> None:
        self._dynamodb.update_item(
            TableName=self.users_table,
            Key={"userId": {"S": user_id}},
            UpdateExpression="SET updatedAt = :at REMOVE notificationSubscriptionArn",
            ExpressionAttributeValues={":at": {"S": at}},
        )


class SnsEmailSubscriptions(EmailSubscriptions):
    def __init__(self, topic_arn: str, sns_client: Any | None = None) -> None:
        self.topic_arn = topic_arn
        self._client = sns_client

    @property
    def _sns(self) -> Any:
        return self._client or client("sns")

    def subscribe(self, email: str, filter_policy: dict[str, list[str]]) -> str:
        # ReturnSubscriptionArn: the ARN even while the subscription awaits its confirmation (Subscribe, SNS API
        # Reference); without it SNS answers "pending confirmation", which no later call can name.
        response = self._sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="email",
            Endpoint=email,
            Attributes={"FilterPolicy": json.dumps(filter_policy), "FilterPolicyScope": FILTER_POLICY_SCOPE},
            ReturnSubscriptionArn=True,
        )
        return str(response["SubscriptionArn"])

    def set_filter_policy(self, subscription_arn: str, filter_policy: dict[str, list[str]]) -> None:
        self._sns.set_subscription_attributes(
            SubscriptionArn=subscription_arn, AttributeName="FilterPolicy", AttributeValue=json.dumps(filter_policy)
        )

    def unsubscribe(self, subscription_arn: str) -> None:
        try:
            self._sns.unsubscribe(SubscriptionArn=subscription_arn)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in _GONE_SUBSCRIPTION_CODES:
                raise
