"""A task's ``source`` is an S3 object key: what S3 allows a key to be (docs/TEST-STRENGTH.md, area lambdas).

AWS: "The object key name is a sequence of Unicode characters with UTF-8 encoding of up to 1,024 bytes long"
(Amazon S3 User Guide, "Naming Amazon S3 objects",
https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html). A longer key names no object, so the
task is refused at validation (a 4xx-like REJECTED with the reason), before any S3 call.
"""

from __future__ import annotations

import os

import pytest
from fakes import InMemoryBlobStore
from task_types_support import rejection, run_task

from task_common.aws import S3BlobStore
from task_common.errors import PermanentTaskError

PREFIX = "users/alice/"


def a_key_of(length: int) -> str:
    """An ASCII key of the owner's, ``length`` bytes long in all."""
    return PREFIX + "k" * (length - len(PREFIX))


def test_a_source_key_of_exactly_1024_bytes_is_read():
    # Given the owner's object whose key is as long as S3 allows
    key = a_key_of(1024)
    blobs = InMemoryBlobStore(objects={key: "one two\nthree"})

    # When a text.stats task reads it, Then its text is counted
    result = run_task("text.stats", {"source": key}, blobs=blobs)
    assert result["words"] == 3


def test_a_source_key_of_1025_bytes_is_refused_with_the_limit():
    # Given a key one byte longer than any S3 key can be
    key = a_key_of(1025)

    # When validated, Then the task is refused, naming the field and the limit
    message = rejection("text.stats", {"source": key})
    assert "source" in message
    assert "1024" in message


def test_a_source_key_of_1024_characters_but_more_than_1024_bytes_is_refused():
    # Given a key of 600 two-byte characters: 612 characters, 1,212 bytes in UTF-8 (S3 counts bytes)
    key = PREFIX + "é" * 600

    # When validated, Then it is refused at validation rather than failing later at S3
    message = rejection("text.stats", {"source": key})
    assert "source" in message
    assert "1024 bytes" in message


def test_a_source_object_that_is_not_utf_8_fails_the_task_permanently_with_the_reason(aws_environment):
    # Given the owner's object in S3 whose bytes are not UTF-8 (a UTF-16 file, say)
    key = "users/alice/notes.txt"
    aws_environment.s3.put_object(Bucket=os.environ["RESULTS_BUCKET_NAME"], Key=key, Body="notes".encode("utf-16"))

    # When a text.stats task reads it, Then it fails for good (no retry can help), saying why
    with pytest.raises(PermanentTaskError, match="is not UTF-8 text"):
        run_task(
            "text.stats", {"source": key}, blobs=S3BlobStore(os.environ["RESULTS_BUCKET_NAME"], aws_environment.s3)
        )
