"""taskrail.local.services.server: moto in server mode, behind the guard, with the interpreter executing."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.core.config import default_user_config

from taskrail.local.services import lambda_, server
from taskrail.local.stack import LOCAL_CREDENTIALS
from tests.local.services.harness import (
    REGION,
    RecordingInvoker,
    asl,
    lambda_task,
    run,
)


def test_server_mode_lambda_invoke_reaches_invoker() -> None:
    saved_config = json.dumps(default_user_config, sort_keys=True)
    invoker = RecordingInvoker(lambda_.InvokeOutcome.success({"status": "served"}))
    with server.threaded_server("127.0.0.1", 0) as url, lambda_.lambda_invoker(invoker):
        # the endpoint takes only the local registry's keys (taskrail/local/users.py)
        session = boto3.Session(region_name=REGION, **LOCAL_CREDENTIALS)
        clients = {n: session.client(n, endpoint_url=url) for n in ("stepfunctions", "lambda", "iam")}
        lambda_.create_stub_function(clients["lambda"], clients["iam"], "worker")
        result = run(
            clients["stepfunctions"],
            asl({"Work": lambda_task("worker", End=True)}, "Work"),
            execution_input={"taskId": "t-9"},
        )
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"result": {"status": "served"}}
    assert invoker.calls == [("worker", {"taskId": "t-9"}, None)]
    assert json.dumps(default_user_config, sort_keys=True) == saved_config


def test_dispatch_cache_finds_each_hosts_backend_as_moto_does_and_lists_moto_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given moto's dispatcher, and the number of times it lists its package folder
    from moto import backends
    from moto.server import DomainDispatcherApplication, create_backend_app

    listed = []
    real_listing = backends.list_of_moto_modules
    monkeypatch.setattr(backends, "list_of_moto_modules", lambda: listed.append(1) or real_listing())
    app = DomainDispatcherApplication(create_backend_app)
    hosts = ("dynamodb.us-east-1.amazonaws.com", "sqs.us-east-1.amazonaws.com", "states.us-east-1.amazonaws.com")
    uncached = {host: app.get_backend_for_host(host) for host in hosts}
    assert len(listed) == len(hosts)
    # When the cache is installed and every host is asked twice
    server.install_dispatch_cache()
    try:
        listed.clear()
        cached = [app.get_backend_for_host(host) for host in hosts + hosts]
        # Then each host gets moto's answer, and moto lists its folder once per host only
        assert cached == [uncached[host] for host in hosts + hosts]
        assert len(set(cached)) == len(hosts)
        assert len(listed) == len(hosts)
    finally:
        server.uninstall_dispatch_cache()
    listed.clear()
    app.get_backend_for_host(hosts[0])
    assert len(listed) == 1  # moto's own again


def test_action_lookup_answers_what_moto_s_list_of_methods_answers() -> None:
    # Given moto's response classes of the services the stack serves, and moto's own list of their methods
    from moto.core.utils import method_names_from_class
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse
    from moto.stepfunctions.responses import StepFunctionResponse

    for cls in (DynamoHandler, SQSResponse, StepFunctionResponse):
        listed = set(method_names_from_class(cls))
        # When each member name (and names that are no method) is looked up the patched way
        names = [*dir(cls), "no_such_action", "put_item_", "__dict__"]
        found = {name for name in names if name in server._function_names(cls)}
        # Then the answers are moto's
        assert found == listed & set(names), cls
        assert "put_item" in found or cls is not DynamoHandler
