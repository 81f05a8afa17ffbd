"""Runs the template's Lambda handlers inside this process, for workflow tests against moto's interpreter.

The local stack runs each function as its own process through awslambdaric (see ``functions.py``); this
runner is the fast path for tests that exercise the workflow itself. Both report a handler exception the
way Lambda does: ``errorType`` is the exception's class name, which is what the workflow's Retry and Catch
match.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from taskrail.local.moto_hooks import InvokeOutcome
from taskrail.local.provision import ACCOUNT_ID, REGION, FunctionSpec

LAMBDAS_DIR = Path(__file__).resolve().parents[2] / "lambdas"


@dataclass
class LambdaContext:
    """The attributes of the managed runtime's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline_ms: float
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:

        return max(0, int(self.deadline_ms - time.time() * 1000))


class InProcessFunctions:
    """An invoker for :func:`taskrail.local.moto_hooks.lambda_invoker` that calls handlers directly."""

    def __init__(self, functions: dict[str, FunctionSpec], *, extra_env: dict[str, str] | None = None) -> None:
        self._by_name = {spec.name: spec for spec in functions.values()}
        self._lock = threading.Lock()
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self.invocations: list[tuple[str, dict[str, Any]]] = []
        environment: dict[str, str] = {}
        for spec in functions.values():
            environment.update(spec.environment)
        environment.update({"AWS_DEFAULT_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "true"})
        environment.update(extra_env or {})
        os.environ.update(environment)
        if str(LAMBDAS_DIR) not in sys.path:
            sys.path.insert(0, str(LAMBDAS_DIR))
        # Handlers read their configuration at import (cold start): start every runner cold.
        for spec in functions.values():
            sys.modules.pop(spec.handler.rsplit(".", 1)[0], None)

    def _handler(self, spec: FunctionSpec) -> Callable[[Any, Any], Any]:
        with self._lock:
            if spec.handler not in self._handlers:
                module_name, function_name = spec.handler.rsplit(".", 1)
                self._handlers[spec.handler] = getattr(importlib.import_module(module_name), function_name)
            return self._handlers[spec.handler]

    def __call__(self, function_name: str, payload: bytes, qualifier: str | None) -> InvokeOutcome:

        spec = self._by_name[
            function_name.rsplit(":", maxsplit=1)[-1] if function_name.startswith("arn:") else function_name
        ]
        event = json.loads(payload or b"null")
        self.invocations.append((spec.name, event))
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.name}",
            memory_limit_in_mb=spec.memory_mb,
            aws_request_id=str(uuid.uuid4()),
            deadline_ms=time.time() * 1000 + spec.timeout_seconds * 1000,
        )
        try:
            result = self._handler(spec)(event, context)
        except Exception as error:
            return InvokeOutcome.unhandled(type(error).__name__, str(error), traceback.format_exception(error))
        return InvokeOutcome.success(result)


def api_task_item(
    task_id: str, task_type: str, params: Any, user: str = "alice", created_at_ms: int | None = None
) -> dict[str, Any]:
    """A Tasks item exactly as the POST /tasks mapping template writes it (for harnesses that skip the API)."""
    created = created_at_ms if created_at_ms is not None else int(time.time() * 1000)
    return {
        "taskId": {"S": task_id},
        "userId": {"S": user},
        "type": {"S": task_type},
        "params": {"S": json.dumps(params)},
        "status": {"S": "QUEUED"},
        "progress": {"N": "0"},
        "attempt": {"N": "0"},
        "createdAt": {"N": str(created)},
    }
