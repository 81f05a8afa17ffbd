"""The S3 adapter of the functions' blob store over moto (docs/TEST-STRENGTH.md, area lambdas).

What S3 answers: HeadObject of a missing key is a 404 ("If the object you request doesn't exist, the error that
Amazon S3 returns depends on whether you also have the s3:ListBucket permission. If you have the s3:ListBucket
permission on the bucket, Amazon S3 returns an HTTP status code 404 Not Found error", HeadObject, Amazon S3 API
Reference); an object is served with the Content-Type it was stored with, which is what the owner's presigned
result link hands to a browser.
"""

from __future__ import annotations

import os

import pytest

from task_common.aws import S3BlobStore


@pytest.fixture
def blobs(aws_environment) -> S3BlobStore:
    return S3BlobStore(os.environ["RESULTS_BUCKET_NAME"], aws_environment.s3)


def test_a_key_with_no_object_does_not_exist_and_one_written_does(blobs: S3BlobStore):
    # Given an empty bucket, Then a key is not there (S3's 404 is an answer, not an error)
    assert blobs.exists("fixes/poison-fixed") is False

    # When the object is written, Then it exists
    blobs.put_text("fixes/poison-fixed", "fixed")
    assert blobs.exists("fixes/poison-fixed") is True


@pytest.mark.parametrize(
    ("key", "content_type"),
    [
        ("tasks/t-1/result-body.json", "application/json; charset=utf-8"),
        ("users/alice/report.csv", "text/csv; charset=utf-8"),
        ("fixes/poison-fixed", "text/plain; charset=utf-8"),
    ],
)
def test_an_object_is_stored_with_the_content_type_of_its_name_in_utf_8(
    blobs: S3BlobStore, aws_environment, key: str, content_type: str
):
    # When text is written under a key
    blobs.put_text(key, "é")

    # Then S3 serves it with the type its extension names (plain text without one), in UTF-8
    stored = aws_environment.s3.get_object(Bucket=os.environ["RESULTS_BUCKET_NAME"], Key=key)
    assert stored["ContentType"] == content_type
    assert stored["Body"].read() == "é".encode()
