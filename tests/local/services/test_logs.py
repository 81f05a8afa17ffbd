"""taskrail/local/services/logs.py: a Logs Insights query filters and sees JSON fields as CloudWatch does.

AWS evidence ("Supported logs and discovered fields",
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_AnalyzeLogData-discoverable-fields.html): the system
fields, ``@log`` "in the form of account-id:log-group-name", and a JSON event's fields discovered; "CloudWatch Logs
Insights language query syntax" (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html):
``filter`` keeps the events whose expression holds. moto 5.2.5 ignores ``filter`` and discovers nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from taskrail.local.services import logs
from taskrail.task_logs import INSIGHTS_QUERY

REGION = "us-east-1"
GROUP = "/aws/lambda/taskrail-ProcessTaskFunction"
TASK = "0b7e7f3c-4d7e-4a51-9c84-2f4a3c1d9e10"
OTHER = "9f1c2b3a-0000-4000-8000-000000000000"


def powertools(message: str, request: str, correlation: str) -> str:
    """A line as Powertools' Logger writes it in a Lambda function (task_common.observability)."""
    return json.dumps(
        {
            "level": "INFO",
            "location": "process_task:42",
            "message": message,
            "timestamp": "2026-12-01 10:00:00,000+0000",
            "service": "taskrail",
            "cold_start": False,
            "function_name": "taskrail-ProcessTaskFunction",
            "function_request_id": request,
            "correlation_id": correlation,
            "task": {"type": "text.stats"},
        }
    )


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        logs.install_insights_filters()
        try:
            client = boto3.client("logs", region_name=REGION)
            client.create_log_group(logGroupName=GROUP)
            client.create_log_stream(logGroupName=GROUP, logStreamName="2026/12/01/[$LATEST]abc")
            now = int(time.time() * 1000)
            lines = [
                powertools("try started", "r-1", TASK),
                powertools("try started", "r-2", OTHER),
                f"START RequestId: r-3 Version: $LATEST with {TASK} in the text",
                powertools("try ended", "r-1", TASK),
            ]
            client.put_log_events(
                logGroupName=GROUP,
                logStreamName="2026/12/01/[$LATEST]abc",
                logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
            )
            yield client
        finally:
            logs.uninstall_insights_filters()


def query(client: Any, text: str) -> list[dict[str, str]]:
    query_id = client.start_query(
        logGroupNames=[GROUP], startTime=int(time.time()) - 60, endTime=int(time.time()) + 60, queryString=text
    )["queryId"]
    answer = client.get_query_results(queryId=query_id)
    assert answer["status"] == "Complete"
    return [{cell["field"]: cell["value"] for cell in row} for row in answer["results"]]


def test_moto_alone_answers_every_event_and_discovers_no_field():
    # What the patch corrects (this test fails if moto changes it)
    with mock_aws():
        client = boto3.client("logs", region_name=REGION)
        client.create_log_group(logGroupName=GROUP)
        client.create_log_stream(logGroupName=GROUP, logStreamName="s")
        now = int(time.time() * 1000)
        client.put_log_events(
            logGroupName=GROUP,
            logStreamName="s",
            logEvents=[
                {"timestamp": now, "message": powertools("a", "r-1", TASK)},
                {"timestamp": now + 1, "message": powertools("b", "r-2", OTHER)},
            ],
        )

        rows = query(client, INSIGHTS_QUERY.format(task_id=TASK))

    assert len(rows) == 2
    assert {row.get("function_request_id") for row in rows} == {None}
    assert {row["@log"] for row in rows} == {GROUP}


def test_the_task_query_answers_the_tasks_lines_only_with_their_discovered_fields(client):
    rows = query(client, INSIGHTS_QUERY.format(task_id=TASK))

    # Then: by correlation_id (a discovered JSON field) or the id in the message, oldest first
    assert [(row.get("function_request_id"), json.loads(row["@message"])["message"]) for row in rows[:1]] == [
        ("r-1", "try started")
    ]
    assert [row.get("function_request_id", "-") for row in rows] == ["r-1", "-", "r-1"]
    assert rows[1]["@message"].startswith("START RequestId: r-3")
    assert {row["@log"] for row in rows} == {f"123456789012:{GROUP}"}
    assert all(set(row) <= {"@ptr", "@timestamp", "@log", "@message", "function_request_id"} for row in rows)


def test_filters_and_or_not_equal_nested_fields_and_regex(client):
    assert len(query(client, f'filter correlation_id != "{TASK}" and level = "INFO"')) == 1  # OTHER's line
    assert len(query(client, 'fields @message | filter task.type = "text.stats"')) == 3
    assert len(query(client, "filter @message like /RequestId: r-\\d/")) == 1
    assert len(query(client, f'filter function_request_id = "r-2" or @message like "{TASK}" | limit 2')) == 2
    assert query(client, 'filter correlation_id = "nobody"') == []


def test_a_query_the_local_stack_cannot_evaluate_is_refused_not_answered_unfiltered(client):
    with pytest.raises(client.exceptions.ClientError) as refused:
        query(client, "stats count(*) by bin(5m)")
    assert refused.value.response["Error"]["Code"] == "MalformedQueryException"
    with pytest.raises(client.exceptions.ClientError):
        query(client, "filter ispresent(correlation_id)")
