"""A local API Gateway over a fresh moto server, provisioned from the synthesized template (no workflow, no
pipes: tasks stay where the API puts them). Requests travel the real path: client → HTTP → the local API
Gateway's SigV4 check and VTL → HTTP → moto's DynamoDB, which answers with its real status and body."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import Credentials

from taskrail.client import Endpoints, TaskrailClient
from taskrail.local.apigw import LocalApiGateway
from taskrail.local.provision import provision
from taskrail.local.region import REGION
from taskrail.local.services.server import threaded_server
from taskrail.local.stack import StackInfo
from taskrail.local.users import ROLES


@dataclass
class LocalApi:
    gateway: LocalApiGateway
    aws_endpoint_url: str
    table: str

    def aws(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )

    def client(self, role: str) -> TaskrailClient:
        """A new session of a local role (a fresh owner for each test module that uses its own role)."""
        session = ROLES[role].session()
        endpoints = Endpoints(self.gateway.url, REGION, self.table, "", "", "")
        credentials = Credentials(session.access_key_id, session.secret_access_key, session.session_token)
        return TaskrailClient(endpoints, credentials, is_local=True)

    def state_file(self, directory: Path) -> Path:
        """A state file the CLI reads to reach this API (the stack process is this one)."""
        path = directory / "local.json"
        info = StackInfo(
            self.gateway.url, self.aws_endpoint_url, "", os.getpid(), REGION, self.table, "", "", "", "", ""
        )
        path.write_text(info.to_json())
        return path


@dataclass
class ProvisionedMoto:
    """A fresh moto server with the template's resources: its URL, clients to it, and what was provisioned."""

    url: str
    resources: Any
    resolve: Any

    def client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.url, region_name=REGION, aws_access_key_id="testing",
            aws_secret_access_key="testing", aws_session_token="testing",
        )  # fmt: skip


@contextmanager
def provisioned_moto(template: dict[str, Any], template_path: Path) -> Iterator[ProvisionedMoto]:
    with threaded_server() as url:
        moto = ProvisionedMoto(url, None, None)
        moto.resources, moto.resolve = provision(
            template, moto.client, stack_name="taskrail", cdk_out=str(template_path.parent)
        )
        yield moto


@contextmanager
def local_api(template: dict[str, Any], template_path: Path) -> Iterator[LocalApi]:
    with (
        provisioned_moto(template, template_path) as moto,
        LocalApiGateway(template, moto.resolve, moto.url) as gateway,
    ):
        yield LocalApi(gateway, moto.url, moto.resources.ref("TasksTable"))
