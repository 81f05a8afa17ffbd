from __future__ import annotations

import json

import pytest
from fakes import FakeLambdaContext, InMemoryBlobStore, InMemoryTaskStore, a_task

from task_common.errors import PermanentTaskError, ValidationFailed
from task_common.models import ValidatedTask, ValidateRequest
from validate_task.logic import validate_task

THRESHOLD = 200_000


def validate(
    tasks: InMemoryTaskStore, blobs: InMemoryBlobStore | None = None, threshold: int = THRESHOLD
) -> ValidatedTask:
    return validate_task(
        ValidateRequest(task_id="task-1", attempt=1),
        tasks=tasks,
        blobs=blobs or InMemoryBlobStore(),
        claim_check_threshold_bytes=threshold,
    )


def test_valid_inline_params_are_returned_with_their_defaults():
    # Given a text.stats task with inline params
    tasks = InMemoryTaskStore(a_task(params='{"text": "hello world"}'))

    # When validated
    validated = validate(tasks)

    # Then Process gets the task's identity and the params, defaults filled in
    assert validated.model_dump(mode="json", exclude_none=True) == {
        "taskId": "task-1",
        "userId": "alice",
        "type": "text.stats",
        "attempt": 1,
        "params": {"text": "hello world", "top": 10},
    }


def test_a_task_without_params_is_validated_as_empty_params():
    tasks = InMemoryTaskStore(a_task(type="diagnostic.poison", params=None))

    assert validate(tasks).params == {}


def test_unknown_type_is_rejected_with_known_types_listed():
    tasks = InMemoryTaskStore(a_task(type="video.transcode"))

    with pytest.raises(ValidationFailed, match=r"unknown task type 'video.transcode'; known types: csv.summary"):
        validate(tasks)


def test_params_that_are_not_json_are_rejected():
    tasks = InMemoryTaskStore(a_task(params='{"text": '))

    with pytest.raises(ValidationFailed, match="params are not valid JSON"):
        validate(tasks)


def test_params_failing_the_types_model_are_rejected_with_a_readable_summary():
    tasks = InMemoryTaskStore(a_task(params='{"text": "hi", "top": 0, "colour": "red"}'))

    with pytest.raises(ValidationFailed) as raised:
        validate(tasks)

    assert str(raised.value) == (
        "invalid params for text.stats: top: Input should be greater than or equal to 1; "
        "colour: Extra inputs are not permitted"
    )


def test_a_source_of_another_user_is_rejected_at_validation():
    tasks = InMemoryTaskStore(a_task(params='{"source": "users/bob/diary.txt"}'))

    with pytest.raises(ValidationFailed, match="source: must be the key of one of your objects, under users/alice/"):
        validate(tasks)


def test_inline_params_over_the_threshold_are_claim_checked_to_s3():
    # Given params whose JSON is larger than the threshold
    text = "word " * 100
    tasks = InMemoryTaskStore(a_task(params=json.dumps({"text": text})))
    blobs = InMemoryBlobStore()

    # When validated with a 100-byte threshold
    validated = validate(tasks, blobs, threshold=100)

    # Then the params travel as a location, and the object holds them
    assert validated.params is None
    assert validated.params_location == "s3://results-bucket/tasks/task-1/input.json"
    assert json.loads(blobs.objects["tasks/task-1/input.json"]) == {"text": text, "top": 10}


def test_params_already_in_s3_are_validated_from_there_and_passed_on_by_location():
    # Given a task whose params API Gateway already stored in the bucket
    blobs = InMemoryBlobStore(objects={"tasks/task-1/input.json": '{"text": "from s3"}'})
    location = "s3://results-bucket/tasks/task-1/input.json"
    tasks = InMemoryTaskStore(a_task(params=None, params_location=location))

    # When validated
    validated = validate(tasks, blobs)

    # Then the location is passed on unchanged
    assert (validated.params, validated.params_location) == (None, location)


def test_invalid_params_in_s3_are_rejected():
    blobs = InMemoryBlobStore(objects={"tasks/task-1/input.json": '{"text": "x", "top": 1000}'})
    tasks = InMemoryTaskStore(a_task(params=None, params_location="s3://results-bucket/tasks/task-1/input.json"))

    with pytest.raises(ValidationFailed, match="top: Input should be less than or equal to 100"):
        validate(tasks, blobs)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("s3://results-bucket/tasks/task-1/missing.json", "does not exist"),
        ("s3://results-bucket/users/bob/params.json", "belongs to another task or user"),
        ("s3://results-bucket/tasks/task-2/input.json", "belongs to another task or user"),
        ("s3://other-bucket/tasks/task-1/input.json", "is not in the bucket results-bucket"),
        ("https://example.com/params.json", "not an s3:// URI"),
    ],
)
def test_a_params_location_that_cannot_be_read_is_rejected(location, message):
    blobs = InMemoryBlobStore(objects={"users/bob/params.json": "{}", "tasks/task-2/input.json": "{}"})
    tasks = InMemoryTaskStore(a_task(params=None, params_location=location))

    with pytest.raises(ValidationFailed, match=message):
        validate(tasks, blobs)


def test_a_task_that_does_not_exist_is_a_permanent_failure():
    with pytest.raises(PermanentTaskError, match="task task-1 does not exist"):
        validate(InMemoryTaskStore())


# Through the deployed handler, against moto


def test_handler_returns_the_validated_task_from_the_tasks_table(aws_environment, load_handler):
    # Given a task item as API Gateway writes it
    aws_environment.put_task(
        taskId="task-1",
        userId="alice",
        type="csv.summary",
        params='{"csv": "a,b\\n1,2"}',
        status="RUNNING",
        progress=0,
        attempt=1,
        createdAt=1735689600000,
        executionArn="arn:aws:states:us-east-1:123456789012:execution:task-lifecycle:task-1",
    )
    handler = load_handler("validate_task.handler")

    # When the function is invoked
    response = handler.handler({"taskId": "task-1", "attempt": 1}, FakeLambdaContext())

    # Then it returns Process's input
    assert response == {
        "taskId": "task-1",
        "userId": "alice",
        "type": "csv.summary",
        "attempt": 1,
        "params": {"csv": "a,b\n1,2", "delimiter": ",", "hasHeader": True},
        "paramsLocation": None,
    }


def test_handler_claim_checks_params_over_the_configured_threshold(aws_environment, load_handler, monkeypatch):
    monkeypatch.setenv("CLAIM_CHECK_THRESHOLD_BYTES", "64")
    aws_environment.put_task(
        taskId="task-2",
        userId="alice",
        type="text.stats",
        params=json.dumps({"text": "a" * 100}),
        status="RUNNING",
    )
    handler = load_handler("validate_task.handler")

    response = handler.handler({"taskId": "task-2", "attempt": 0}, FakeLambdaContext())

    assert response["paramsLocation"] == "s3://taskrail-results/tasks/task-2/input.json"
    assert json.loads(aws_environment.object_text("tasks/task-2/input.json")) == {
        "text": "a" * 100,
        "top": 10,
    }


def test_handler_raises_validation_failed_for_an_unknown_type(aws_environment, load_handler):
    aws_environment.put_task(taskId="task-3", userId="alice", type="nope", params="{}", status="RUNNING")
    handler = load_handler("validate_task.handler")

    with pytest.raises(ValidationFailed, match="unknown task type 'nope'"):
        handler.handler({"taskId": "task-3", "attempt": 0}, FakeLambdaContext())
