"""The moto-backed AWS of the unit tests: the resource names and the :class:`Aws` helper that the
``aws_environment`` fixture (conftest.py) yields. A module of its own so that tests import it by name, never
from ``conftest`` (pytest loads several conftest.py files, and which one ``import conftest`` finds depends on
the order the folders were collected in)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"
TASKS_TABLE = "Tasks"
IDEMPOTENCY_TABLE = "Idempotency"
RESULTS_BUCKET = "taskrail-results"


@dataclass
class Aws:
    dynamodb: Any
    s3: Any
    sfn: Any

    def put_task(self, **attributes: Any) -> None:
        item = {
            name: {"N": str(value)} if isinstance(value, int) else {"S": value} for name, value in attributes.items()
        }
        self.dynamodb.put_item(TableName=TASKS_TABLE, Item=item)

    def task_item(self, task_id: str) -> dict[str, Any]:
        return self.dynamodb.get_item(TableName=TASKS_TABLE, Key={"taskId": {"S": task_id}})["Item"]

    def object_text(self, key: str) -> str:
        return self.s3.get_object(Bucket=RESULTS_BUCKET, Key=key)["Body"].read().decode("utf-8")


def create_users_tables(client: Any, names: tuple[str, ...] = ("users", "profiles")) -> None:
    """The Users and Profiles tables as the template keys them (userId), for the user functions' tests."""
    for name in names:
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "userId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "userId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
