"""Presigned (query-string) SigV4 on the local AWS endpoint: accepted for S3 GET/HEAD until X-Amz-Date +
X-Amz-Expires, as S3 documents ("Authenticating Requests: Using Query Parameters (AWS Signature Version 4)",
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html); "Request has expired" after."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from taskrail.local import sigv4
from taskrail.local.region import REGION
from taskrail.local.users import ALICE, known_credentials

HOST = "127.0.0.1:4566"


@dataclass(frozen=True)
class Request:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("Host", HOST)])
    body: bytes = b""

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        return found[-1] if found else None


def link(
    method: str = "get_object", expires: int = 300, session_token: str | None = None
) -> tuple[Request, dt.datetime]:
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{HOST}",
        region_name=REGION,
        config=Config(signature_version="s3v4"),
        aws_access_key_id=ALICE.access_key_id,
        aws_secret_access_key=ALICE.secret_access_key,
        aws_session_token=session_token,
    )
    signed_at = dt.datetime.now(dt.UTC)
    url = urlsplit(
        s3.generate_presigned_url(method, Params={"Bucket": "b", "Key": "tasks/t/result-body.json"}, ExpiresIn=expires)
    )
    http_method = {"get_object": "GET", "head_object": "HEAD", "put_object": "PUT"}[method]
    return Request(http_method, url.path, url.query), signed_at


def verifier(now: dt.datetime, *, presigned: frozenset[str] = frozenset({"s3"})) -> sigv4.SigV4Verifier:
    return sigv4.SigV4Verifier(
        known_credentials(), region=None, service=None, clock=lambda: now, presigned_services=presigned
    )


@pytest.mark.parametrize("method", ["get_object", "head_object"])
def test_a_link_is_accepted_as_its_signer_until_it_expires(method: str):
    request, signed_at = link(method)

    assert verifier(signed_at + dt.timedelta(seconds=299)).verify(request).access_key_id == ALICE.access_key_id


def test_a_link_past_its_expiry_is_refused_as_expired():
    request, signed_at = link(expires=300)

    with pytest.raises(sigv4.SigV4Error) as refused:
        verifier(signed_at + dt.timedelta(seconds=302)).verify(request)
    assert (refused.value.failure, refused.value.message) == (sigv4.SigV4Failure.LINK_EXPIRED, "Request has expired")


def test_a_link_for_a_write_or_with_presigning_off_is_refused():
    put, signed_at = link("put_object")
    get, _ = link()

    with pytest.raises(sigv4.SigV4Error) as write:
        verifier(signed_at).verify(put)
    with pytest.raises(sigv4.SigV4Error) as off:
        verifier(signed_at, presigned=frozenset()).verify(get)
    assert write.value.failure == off.value.failure == sigv4.SigV4Failure.MISSING


def test_a_link_with_a_week_or_more_of_life_or_a_foreign_session_token_is_refused():
    get, signed_at = link()
    too_long = Request(get.method, get.raw_path, get.raw_query.replace("X-Amz-Expires=300", "X-Amz-Expires=604801"))
    forged, _ = link(session_token="not-alices")

    with pytest.raises(sigv4.SigV4Error) as week:
        verifier(signed_at).verify(too_long)
    with pytest.raises(sigv4.SigV4Error) as token:
        verifier(signed_at).verify(forged)
    assert week.value.failure == sigv4.SigV4Failure.INCOMPLETE
    assert token.value.failure == sigv4.SigV4Failure.UNKNOWN_KEY
