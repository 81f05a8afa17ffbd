"""The CLI's AWS clients, made lean: one botocore session per command, one client per service, made when first used.

Measured (issue 13, ``bench/cli_latency.py``): boto3 adds its import to botocore's and nothing the CLI uses (its
resources), and a botocore session's first client spends about a third of its time in
``Loader.list_available_services``, which lists every one of botocore's ~400 service folders (a ``listdir`` and
``stat`` per folder and version) only to check that the one service asked for exists. :class:`NamedServicesLoader`
answers that check for the services the CLI uses, with the same answer botocore's listing gives for them; a client of
any other service comes from a session with botocore's own loader.

Touch point (botocore 1.44.5 exactly, pinned in pyproject.toml): a session's ``data_loader`` component, and
``Loader.load_service_model`` asking ``list_available_services`` only whether the service is known. :data:`DEPENDS`
lists it; ``tests/unit/test_aws_clients.py`` checks it, and that the lean loader's answers are botocore's.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import botocore
import botocore.loaders
import botocore.session

BOTOCORE_VERSION = "1.44.5"
#: Every service a CLI command calls (the operator's ports, `taskrail logs` on AWS, the stack lookup).
CLI_SERVICES = ("cloudformation", "dynamodb", "logs", "s3", "sqs", "stepfunctions")
#: What of botocore this module relies on: (symbol, fragments its source must still contain).
DEPENDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("botocore.loaders.Loader.load_service_model", ("known_services = self.list_available_services(type_name)",)),
    ("botocore.session.Session.create_client", ("loader = self.get_component('data_loader')",)),
    ("botocore.loaders.Loader.list_available_services", ("for possible_path in self._potential_locations():",)),
)

AwsClients = Callable[[str], Any]  # a service name -> its client


class NamedServicesLoader(botocore.loaders.Loader):
    """botocore's loader, whose list of known services holds only those named (looked up one by one)."""

    def __init__(self, services: tuple[str, ...] = CLI_SERVICES) -> None:
        super().__init__()
        self.services = services

    @botocore.loaders.instance_cache
    def list_available_services(self, type_name: str) -> list[str]:
        return sorted(service for service in self.services if self._has(service, type_name))

    def _has(self, service: str, type_name: str) -> bool:
        for location in self._potential_locations():
            try:  # os.scandir and plain strings: pathlib's objects cost more than the lookup itself here
                versions = list(os.scandir(f"{location}{os.sep}{service}"))
            except OSError:  # no such service folder in this location
                continue
            if any(self.file_loader.exists(f"{v.path}{os.sep}{type_name}") for v in versions if v.is_dir()):
                return True
        return False


def lean_session() -> botocore.session.Session:
    """A botocore session that knows the CLI's services without listing botocore's data folder."""
    session = botocore.session.Session()
    if botocore.__version__ == BOTOCORE_VERSION:
        session.register_component("data_loader", NamedServicesLoader())
    return session


def clients(make: Callable[[botocore.session.Session, str], Any]) -> AwsClients:
    """One client per service, made when first asked for by ``make(session, service)``; the CLI's services share
    one lean session, any other service gets a session with botocore's own loader."""
    lean = functools.cache(lean_session)
    other = functools.cache(botocore.session.Session)

    @functools.cache
    def client(service: str) -> Any:
        return make(lean() if service in CLI_SERVICES else other(), service)

    return client


def local_clients(endpoint_url: str, region: str, credentials: dict[str, str]) -> AwsClients:
    """Clients of the local stack's AWS endpoint."""
    return clients(
        lambda session, service: session.create_client(
            service, endpoint_url=endpoint_url, region_name=region, **credentials
        )
    )
