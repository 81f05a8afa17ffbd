"""S3 parity: object writes and versioning as taskrail's results bucket (versioned) and a user's next template meet
them on AWS, each a request and the answer AWS gives it, with its evidence.

Evidence (AWS documentation pages, found with the search tool, corpus ``docs``):
- [KEYS] "Naming Amazon S3 objects", S3 User Guide (https://docs.aws.amazon.com/AmazonS3/latest/userguide/
  object-keys.html): "The object key name is a sequence of Unicode characters with UTF-8 encoding of up to 1,024
  bytes long"; S3 API Reference, "Error responses": ``KeyTooLongError`` "Your key is too long" (400).
- [VERSIONING] PutBucketVersioning, S3 API Reference (.../API_PutBucketVersioning.html): ``Status`` "Valid Values:
  Enabled | Suspended"; "Error responses": ``MalformedXML`` "The XML you provided was not well-formed or did not
  validate against our published schema" (400). GetBucketVersioning: a bucket that never had versioning returns
  no Status.
- [VERSIONS] ListObjectVersions, S3 API Reference (.../API_ListObjectVersions.html) and "Working with objects in a
  versioning-enabled bucket" / "Using versioning in S3 buckets", User Guide: an object written before versioning
  was enabled has version ID ``null``; a DELETE without a version ID on a versioned bucket adds a delete marker
  that becomes the latest version (``DeleteMarkers`` entry, ``IsLatest`` true), and the older versions stay
  (``Versions``, ``IsLatest`` false); "Working with delete markers": a GET of a key whose latest version is a
  delete marker returns 404 ``NoSuchKey`` (with ``x-amz-delete-marker: true``: a known local deviation).
  GetObject with an unknown version ID: ``NoSuchVersion`` (404).
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.parity.endpoint import call


def _bucket(s3: Any) -> str:
    name = f"parity-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def test_object_key_is_at_most_1024_bytes(s3: Any) -> None:
    """[KEYS] 1,024 bytes is accepted; 1,025 bytes, and 600 two-byte characters (1,200 bytes), are refused."""
    bucket = _bucket(s3)
    fits = call(s3.put_object, Bucket=bucket, Key="k" * 1024, Body=b"1")
    over = call(s3.put_object, Bucket=bucket, Key="k" * 1025, Body=b"1")
    wide = call(s3.put_object, Bucket=bucket, Key="é" * 600, Body=b"1")
    for label, answer in (("1024-byte key", fits), ("1025-byte key", over), ("600 x 2-byte key", wide)):
        print(answer.line(f"s3 PutObject {label} [KEYS]"))
    assert (fits.status, fits.code) == (200, None)
    assert (over.status, over.code, over.message) == (400, "KeyTooLongError", "Your key is too long")
    assert (wide.status, wide.code) == (400, "KeyTooLongError")


def test_versioning_status_is_enabled_or_suspended(s3: Any) -> None:
    """[VERSIONING] a bucket that never had versioning has no Status; ``On`` is MalformedXML; Suspended is accepted."""
    bucket = _bucket(s3)
    never = call(s3.get_bucket_versioning, Bucket=bucket)
    bad = call(s3.put_bucket_versioning, Bucket=bucket, VersioningConfiguration={"Status": "On"})
    suspended = call(s3.put_bucket_versioning, Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    for label, answer in (("GetBucketVersioning never", never), ("Status On", bad), ("Status Suspended", suspended)):
        print(answer.line(f"s3 {label} [VERSIONING]"))
    assert never.status == 200
    assert "Status" not in never.body
    assert (bad.status, bad.code) == (400, "MalformedXML")
    assert (suspended.status, suspended.code) == (200, None)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Suspended"


def test_versions_and_delete_markers(s3: Any) -> None:
    """[VERSIONS] the null version from before versioning, a new version, then a delete marker as latest."""
    bucket = _bucket(s3)
    s3.put_object(Bucket=bucket, Key="result.json", Body=b"1")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    second = s3.put_object(Bucket=bucket, Key="result.json", Body=b"22")["VersionId"]
    deleted = s3.delete_object(Bucket=bucket, Key="result.json")
    listed = s3.list_object_versions(Bucket=bucket)
    versions = {v["VersionId"]: (v["IsLatest"], v["Size"]) for v in listed["Versions"]}
    markers = [(m["Key"], m["IsLatest"]) for m in listed["DeleteMarkers"]]
    print(f"PARITY s3 ListObjectVersions: versions {versions} delete markers {markers} [VERSIONS]")
    assert deleted["DeleteMarker"] is True
    assert versions == {"null": (False, 1), second: (False, 2)}
    assert markers == [("result.json", True)]
    gone = call(s3.get_object, Bucket=bucket, Key="result.json")
    print(gone.line("s3 GetObject behind a delete marker [VERSIONS]"))
    assert (gone.status, gone.code) == (404, "NoSuchKey")
    # AWS also sends x-amz-delete-marker: true here; locally it is missing (docs/LOCAL-FIDELITY.md, S3 deviations)
    old = s3.get_object(Bucket=bucket, Key="result.json", VersionId="null")["Body"].read()
    unknown = call(s3.get_object, Bucket=bucket, Key="result.json", VersionId="3HL4kqtJlcpXroDTDmJ")
    print(unknown.line("s3 GetObject unknown VersionId [VERSIONS]"))
    assert old == b"1"
    assert (unknown.status, unknown.code) == (404, "NoSuchVersion")
