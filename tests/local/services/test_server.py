"""taskrail.local.services.server: moto in server mode, behind the guard, with the interpreter executing."""

from __future__ import annotations

import json

import boto3
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
