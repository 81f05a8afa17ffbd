"""The local AWS endpoint the data-service parity cases call: moto in server mode behind the local guard, over HTTP,
with every patch of the local stack installed (what `taskrail local up` serves), signed as the stack's service key.

Clients skip botocore's own parameter validation, so a case sees what the *service* answers to a request a
differently-validating client (the AWS CLI, another SDK, a Step Functions task) could send.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from taskrail.local.services import registry, server
from taskrail.local.stack import LOCAL_CREDENTIALS

REGION = "us-east-1"
UNVALIDATED = Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"})


@contextmanager
def local_endpoint() -> Iterator[str]:
    with registry.aws_semantics(), server.threaded_server("127.0.0.1", 0) as url:
        yield url


def client(endpoint: str, service: str) -> Any:
    session = boto3.Session(region_name=REGION, **LOCAL_CREDENTIALS)
    return session.client(service, endpoint_url=endpoint, config=UNVALIDATED)


@dataclass
class Answer:
    """What the service answered: its HTTP status, error code and message (none on success), the whole body."""

    status: int
    code: str | None
    message: str
    body: dict[str, Any] = field(default_factory=dict)

    def line(self, case: str) -> str:
        outcome = f"{self.status} {self.code}: {self.message[:110]}" if self.code else f"{self.status} OK"
        return f"PARITY {case}: {outcome}"


def call(method: Any, **request: Any) -> Answer:
    try:
        response = method(**request)
    except botocore.exceptions.ClientError as error:
        body = dict(error.response)
        message = str(body.get("Error", {}).get("Message", ""))
        return Answer(body["ResponseMetadata"]["HTTPStatusCode"], body["Error"]["Code"], message, body)
    return Answer(response["ResponseMetadata"]["HTTPStatusCode"], None, "", dict(response))
