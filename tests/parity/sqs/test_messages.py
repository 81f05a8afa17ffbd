"""SQS parity: SendMessage / SendMessageBatch / ReceiveMessage limits taskrail's DLQ writes (and a user's next
template) meet on AWS, each a request and the answer AWS gives it, with its evidence.

Evidence (AWS documentation pages, found with the search tool, corpus ``docs``):
- [SEND] SendMessage, Amazon SQS API Reference (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/
  APIReference/API_SendMessage.html), ``MessageBody``: "The minimum size is one character. The maximum size is 1 MiB
  or 1,048,576 bytes"; ``DelaySeconds`` "Valid values: 0 to 900"; error InvalidParameterValue (400).
- [ATTRIBUTES] "Amazon SQS message attributes", SQS Developer Guide (.../SQSDeveloperGuide/
  sqs-message-metadata.html): message attributes are sent alongside the body and each attribute's name, type and
  value count toward the message size restriction; the queue's ``MaximumMessageSize`` (SetQueueAttributes: "The
  limit of how many bytes a message can contain before Amazon SQS rejects it", 1,024 to 1,048,576) is in *bytes*.
- [QUOTAS] "Amazon SQS message quotas", SQS Developer Guide (.../quotas-messages.html): "A message can contain up
  to 10 metadata attributes"; "A single message batch request can include a maximum of 10 messages"; "A batched
  message ID can be up to 80 characters long. The following characters are accepted: alphanumeric characters,
  hyphens (-), and underscores (_)".
- [BATCH] SendMessageBatch, API Reference (.../API_SendMessageBatch.html): "The maximum allowed individual message
  size and the maximum total payload size (the sum of the individual lengths of all of the batched messages) are
  both 1 MiB"; errors BatchEntryIdsNotDistinct, BatchRequestTooLong, EmptyBatchRequest, InvalidBatchEntryId,
  TooManyEntriesInBatchRequest (query-compatible codes ``AWS.SimpleQueueService.<name>``).
- [RECEIVE] ReceiveMessage, API Reference: ``MaxNumberOfMessages`` "Valid values: 1 to 10"; InvalidParameterValue.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.parity.endpoint import call

INVALID = "InvalidParameterValue"
MIB = 1_048_576


def _attribute(value: str) -> dict[str, Any]:
    return {"DataType": "String", "StringValue": value}


SMALL_CASES = [
    # (name, request (QueueUrl added), status, code, message fragment, evidence)
    ("1,024-byte body on a 1,024-byte queue is accepted", {"MessageBody": "x" * 1024}, 200, None, "", "ATTRIBUTES"),
    (
        "1,025-byte body on a 1,024-byte queue",
        {"MessageBody": "x" * 1025},
        400,
        INVALID,
        "Message must be shorter than 1024 bytes",
        "ATTRIBUTES",
    ),
    (
        "600 two-byte characters (1,200 bytes) on a 1,024-byte queue",
        {"MessageBody": "é" * 600},
        400,
        INVALID,
        "Message must be shorter than 1024 bytes",
        "ATTRIBUTES",
    ),
    (
        "1,000-byte body + a 41-byte attribute (name, type, value) on a 1,024-byte queue",
        {"MessageBody": "x" * 1000, "MessageAttributes": {"trace": _attribute("y" * 30)}},
        400,
        INVALID,
        "Message must be shorter than 1024 bytes",
        "ATTRIBUTES",
    ),
    (
        "10 message attributes are accepted",
        {"MessageBody": "a", "MessageAttributes": {f"a{i}": _attribute("v") for i in range(10)}},
        200,
        None,
        "",
        "QUOTAS",
    ),
    (
        "11 message attributes",
        {"MessageBody": "a", "MessageAttributes": {f"a{i}": _attribute("v") for i in range(11)}},
        400,
        INVALID,
        "",
        "QUOTAS",
    ),
    ("DelaySeconds 901", {"MessageBody": "a", "DelaySeconds": 901}, 400, INVALID, "DelaySeconds", "SEND"),
]


@pytest.mark.parametrize(
    ("name", "request_", "status", "code", "message", "evidence"), SMALL_CASES, ids=[c[0] for c in SMALL_CASES]
)
def test_send_message_answers_as_aws(
    sqs: Any,
    small_queue: str,
    name: str,
    request_: dict[str, Any],
    status: int,
    code: str | None,
    message: str,
    evidence: str,
) -> None:
    answer = call(sqs.send_message, QueueUrl=small_queue, **request_)
    print(answer.line(f"sqs SendMessage {name} [{evidence}]"))
    assert (answer.status, answer.code) == (status, code), answer.message
    assert message in answer.message


def test_one_mib_is_the_largest_message(sqs: Any, large_queue: str) -> None:
    """[SEND] 1,048,576 bytes is accepted on a 1 MiB queue, one byte more is refused."""
    fits = call(sqs.send_message, QueueUrl=large_queue, MessageBody="x" * MIB)
    over = call(sqs.send_message, QueueUrl=large_queue, MessageBody="x" * (MIB + 1))
    print(fits.line("sqs SendMessage 1 MiB body [SEND]"))
    print(over.line("sqs SendMessage 1 MiB + 1 byte body [SEND]"))
    assert (fits.status, fits.code) == (200, None)
    assert (over.status, over.code) == (400, INVALID)
    assert f"Message must be shorter than {MIB} bytes" in over.message


def _entries(count: int, body: str = "a") -> list[dict[str, Any]]:
    return [{"Id": f"m{i}", "MessageBody": body} for i in range(count)]


BATCH_CASES = [
    ("10 entries are accepted", _entries(10), 200, None, "QUOTAS"),
    ("11 entries", _entries(11), 400, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "QUOTAS"),
    ("no entry", [], 400, "AWS.SimpleQueueService.EmptyBatchRequest", "BATCH"),
    (
        "two entries with one Id",
        [{"Id": "same", "MessageBody": "a"}, {"Id": "same", "MessageBody": "b"}],
        400,
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        "BATCH",
    ),
    (
        "an Id with a space",
        [{"Id": "a b", "MessageBody": "a"}],
        400,
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        "QUOTAS",
    ),
    (
        "an 81-character Id",
        [{"Id": "i" * 81, "MessageBody": "a"}],
        400,
        "AWS.SimpleQueueService.InvalidBatchEntryId",
        "QUOTAS",
    ),
    (
        "two 600,000-byte messages (1.2 MB together)",
        _entries(2, "x" * 600_000),
        400,
        "AWS.SimpleQueueService.BatchRequestTooLong",
        "BATCH",
    ),
    (
        "two 520,000-byte bodies with attributes over 1 MiB together",
        [
            {"Id": f"m{i}", "MessageBody": "x" * 520_000, "MessageAttributes": {"pad": _attribute("p" * 5_000)}}
            for i in range(2)
        ],
        400,
        "AWS.SimpleQueueService.BatchRequestTooLong",
        "BATCH",
    ),
]


@pytest.mark.parametrize(
    ("name", "entries", "status", "code", "evidence"), BATCH_CASES, ids=[c[0] for c in BATCH_CASES]
)
def test_send_message_batch_answers_as_aws(
    sqs: Any, large_queue: str, name: str, entries: list[dict[str, Any]], status: int, code: str | None, evidence: str
) -> None:
    answer = call(sqs.send_message_batch, QueueUrl=large_queue, Entries=entries)
    print(answer.line(f"sqs SendMessageBatch {name} [{evidence}]"))
    assert (answer.status, answer.code) == (status, code), answer.message
    if status == 200:
        assert answer.body["Failed"] == []
        assert len(answer.body["Successful"]) == len(entries)


def test_receive_at_most_ten(sqs: Any, small_queue: str) -> None:
    """[RECEIVE] MaxNumberOfMessages 11 is refused with InvalidParameterValue."""
    answer = call(sqs.receive_message, QueueUrl=small_queue, MaxNumberOfMessages=11)
    print(answer.line("sqs ReceiveMessage MaxNumberOfMessages 11 [RECEIVE]"))
    assert (answer.status, answer.code) == (400, INVALID)
