"""The Step Functions interpreter's service clients, signed as the state machine's role.

moto's interpreter builds every service client with ``boto_client_for(region, service, state_credentials)``
(``moto/stepfunctions/parser/asl/utils/boto_client.py``), where ``state_credentials.role_arn`` is the state
machine's ``roleArn`` (or a state's ``Credentials.RoleArn``), and signs with the fixed key ``ak``/``sk`` whatever
the role. :func:`role_client` builds the same client (same endpoint choice, same ``Config``) signed as a session
of that role, so the local endpoint sees each integration's call as the role's, as IAM does on AWS.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from moto.core.models import botocore_stubber
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

from taskrail.local.iam.principals import RoleCredential

__all__ = ["role_client"]


def role_client(region: str, service: str, credential: RoleCredential) -> Any:
    kwargs: dict[str, Any] = {}
    if not botocore_stubber.enabled:  # server mode: the interpreter calls the endpoint it runs behind
        kwargs["endpoint_url"] = f"http://localhost:{moto_server_port()}"
    return boto3.client(
        service_name=service,
        region_name=region,
        **credential.client_kwargs(),
        config=Config(
            parameter_validation=False,
            retries={"max_attempts": 0, "total_max_attempts": 1},
            connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
            read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
        ),
        **kwargs,
    )
