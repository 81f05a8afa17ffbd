"""taskrail/aws_clients.py: the CLI's lean botocore clients know its services as botocore does (issue 13 latency)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import botocore
import botocore.loaders
import pytest

from taskrail import aws_clients

MODEL_TYPES = ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2")


def source_of(symbol: str) -> str:
    module_name, class_name, method = symbol.rsplit(".", 2)
    function = getattr(getattr(importlib.import_module(module_name), class_name), method)
    # botocore's instance_cache wraps without functools.wraps: the function is in the wrapper's closure
    inner = [c.cell_contents for c in function.__closure__ or () if inspect.isfunction(c.cell_contents)]
    return inspect.getsource(inner[0] if inner else function)


def test_the_botocore_this_relies_on_is_the_one_installed() -> None:
    assert botocore.__version__ == aws_clients.BOTOCORE_VERSION
    for symbol, fragments in aws_clients.DEPENDS:
        assert [f for f in fragments if f not in source_of(symbol)] == [], symbol


@pytest.mark.parametrize("type_name", MODEL_TYPES)
def test_the_lean_loader_knows_the_cli_services_as_botocore_does(type_name: str) -> None:
    # Given botocore's own loader, which lists every service folder
    everything = botocore.loaders.Loader().list_available_services(type_name)
    # Then the lean one answers the same for the CLI's services, without listing the others
    expected = [service for service in everything if service in aws_clients.CLI_SERVICES]
    assert aws_clients.NamedServicesLoader().list_available_services(type_name) == expected
    if type_name == "service-2":
        assert expected == sorted(aws_clients.CLI_SERVICES)  # every CLI service has a model


def test_one_client_per_service_made_when_first_asked_for_and_any_service_still_works() -> None:
    made: list[tuple[Any, str]] = []

    def make(session: Any, service: str) -> Any:
        made.append((session, service))
        return session.create_client(service, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s")

    clients = aws_clients.clients(make)
    assert made == []  # nothing made before it is asked for
    sfn = clients("stepfunctions")
    assert clients("stepfunctions") is sfn
    sqs = clients("sqs")
    sts = clients("sts")  # not a CLI service: botocore's own loader
    assert [service for _, service in made] == ["stepfunctions", "sqs", "sts"]
    assert made[0][0] is made[1][0]  # one session for the CLI's services
    assert isinstance(made[0][0].get_component("data_loader"), aws_clients.NamedServicesLoader)
    assert not isinstance(made[2][0].get_component("data_loader"), aws_clients.NamedServicesLoader)
    assert sfn.meta.service_model.service_name == "stepfunctions"
    assert sqs.meta.service_model.service_name == "sqs"
    assert sts.meta.service_model.service_name == "sts"
