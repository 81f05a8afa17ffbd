"""SNS parity: Publish / PublishBatch limits (taskrail's outcome topic; a user's next template), each a request and
the answer AWS gives it, with its evidence.

Evidence (AWS documentation pages, found with the search tool, corpus ``docs``):
- [PUBLISH] Publish, Amazon SNS API Reference (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html),
  ``Message``: "Messages must be UTF-8 encoded strings and at most 256 KB in size (262,144 bytes, not 262,144
  characters)"; ``Subject``: "must be ASCII text that begins with a letter, number, or punctuation mark; must not
  include line breaks or control characters; and must be less than 100 characters long"; InvalidParameter (400).
- [ATTRIBUTES] "Amazon SNS message attributes", SNS Developer Guide (.../sns-message-attributes.html): message
  attributes are sent with the message; their name, type and value count toward the 256 KB message size.
- [BATCH] PublishBatch, API Reference (.../API_PublishBatch.html): "up to 10 messages"; "The maximum allowed
  individual message size and the maximum total payload size (the sum of the individual lengths of all of the
  batched messages) are both 256 KB (262,144 bytes)"; errors BatchRequestTooLong ("The length of all the messages
  put together is more than the limit"), BatchEntryIdsNotDistinct, TooManyEntriesInBatchRequest.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.parity.endpoint import call

LIMIT = 262_144
INVALID = "InvalidParameter"

PUBLISH_CASES = [
    ("262,144 ASCII bytes are accepted", {"Message": "x" * LIMIT}, 200, None, "", "PUBLISH"),
    ("262,145 bytes", {"Message": "x" * (LIMIT + 1)}, 400, INVALID, "Message too long", "PUBLISH"),
    (
        "140,000 two-byte characters (280,000 bytes)",
        {"Message": "é" * 140_000},
        400,
        INVALID,
        "Message too long",
        "PUBLISH",
    ),
    (
        "262,100-byte message + a 60-byte attribute",
        {"Message": "x" * 262_100, "MessageAttributes": {"trace": {"DataType": "String", "StringValue": "y" * 50}}},
        400,
        INVALID,
        "Message too long",
        "ATTRIBUTES",
    ),
    ("a Subject with a line break", {"Message": "a", "Subject": "done\nnow"}, 400, INVALID, "Subject", "PUBLISH"),
    ("a Subject with a control character", {"Message": "a", "Subject": "done\x07"}, 400, INVALID, "Subject", "PUBLISH"),
    ("a plain Subject is accepted", {"Message": "a", "Subject": "Task succeeded"}, 200, None, "", "PUBLISH"),
]


@pytest.mark.parametrize(
    ("name", "request_", "status", "code", "message", "evidence"), PUBLISH_CASES, ids=[c[0] for c in PUBLISH_CASES]
)
def test_publish_answers_as_aws(
    sns: Any,
    topic: str,
    name: str,
    request_: dict[str, Any],
    status: int,
    code: str | None,
    message: str,
    evidence: str,
) -> None:
    answer = call(sns.publish, TopicArn=topic, **request_)
    print(answer.line(f"sns Publish {name} [{evidence}]"))
    assert (answer.status, answer.code) == (status, code), answer.message
    assert message in answer.message


def _entries(*sizes: int) -> list[dict[str, Any]]:
    return [{"Id": f"m{i}", "Message": "x" * size} for i, size in enumerate(sizes)]


BATCH_CASES = [
    ("10 small entries are accepted", _entries(*[10] * 10), 200, None, "BATCH"),
    (
        "200 KiB + 100 KiB (over 256 KiB together)",
        _entries(200 * 1024, 100 * 1024),
        400,
        "BatchRequestTooLong",
        "BATCH",
    ),
    ("11 entries", _entries(*[1] * 11), 400, "TooManyEntriesInBatchRequest", "BATCH"),
    (
        "two entries with one Id",
        [{"Id": "same", "Message": "a"}, {"Id": "same", "Message": "b"}],
        400,
        "BatchEntryIdsNotDistinct",
        "BATCH",
    ),
]


@pytest.mark.parametrize(
    ("name", "entries", "status", "code", "evidence"), BATCH_CASES, ids=[c[0] for c in BATCH_CASES]
)
def test_publish_batch_answers_as_aws(
    sns: Any, topic: str, name: str, entries: list[dict[str, Any]], status: int, code: str | None, evidence: str
) -> None:
    answer = call(sns.publish_batch, TopicArn=topic, PublishBatchRequestEntries=entries)
    print(answer.line(f"sns PublishBatch {name} [{evidence}]"))
    assert (answer.status, answer.code) == (status, code), answer.message
    if status == 200:
        assert answer.body["Failed"] == []
        assert len(answer.body["Successful"]) == len(entries)
