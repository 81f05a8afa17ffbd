"""A function's init imports what every request needs, and no more: no task type module (a request loads its own
type, on first use) and not the X-Ray SDK (the tracer is created on the first traced call).

Each check imports a handler module in a fresh interpreter (this process has imported everything already), as the
Lambda runtime does: the asset folder on the path, a function's environment, ``LAMBDA_TASK_ROOT`` set so that
Powertools' Tracer counts itself in Lambda and would patch at creation. Its cost is measured in `make bench`
(bench/coldstart.py), never here.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import PydanticUndefined

from task_common.config import EnvironmentModel
from task_types import registry

LAMBDAS = Path(__file__).resolve().parents[2] / "lambdas"
HANDLER_MODULES = sorted(f"{path.parent.name}.handler" for path in LAMBDAS.glob("*/handler.py"))
# Libraries of the X-Ray SDK's patch list that are installed here: Powertools' default (patch_all) imports each one.
UNTRACED_LIBRARIES = ("sqlite3", "requests", "sqlalchemy", "httpx")
PROBE = """
import importlib, json, sys
for module in sys.argv[1:]:
    importlib.import_module(module)
print(json.dumps(sorted(sys.modules)))
"""


def _environment_models() -> list[type[EnvironmentModel]]:
    for config in ("read_result.config", "reconcile_tasks.outbox", "push_progress.config"):
        importlib.import_module(config)
    found, pending = [], [EnvironmentModel]
    while pending:
        model = pending.pop()
        found.append(model)
        pending.extend(model.__subclasses__())
    return found


def function_environment() -> dict[str, str]:
    """Every variable some function's configuration requires, with a placeholder value, and what the runtime sets."""
    required = {
        field.alias: "placeholder-1"
        for model in _environment_models()
        for field in model.model_fields.values()
        if field.alias and field.default is PydanticUndefined and field.default_factory is None
    }
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(LAMBDAS),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(LAMBDAS),
        "AWS_LAMBDA_FUNCTION_NAME": "cold-start-probe",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "probe",
        **required,
    }


def _run(code: str, *args: str) -> str:
    """The last line ``code`` prints, run in a fresh interpreter with a function's environment."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=function_environment(),
        cwd=LAMBDAS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


def loaded_after(*modules: str, code: str = PROBE) -> set[str]:
    loaded: list[str] = json.loads(_run(code, *modules))
    return set(loaded)


def type_modules() -> set[str]:
    return {f"{registry.PACKAGE}.{name}" for name in registry.type_modules()}


def test_every_function_has_a_handler_module_here():
    assert HANDLER_MODULES == [
        "process_task.handler",
        "push_progress.handler",
        "read_result.handler",
        "reconcile_tasks.handler",
        "task_changes.handler",
        "validate_task.handler",
    ]


@pytest.mark.parametrize("handler", HANDLER_MODULES)
def test_a_handlers_init_imports_no_task_type_and_not_the_xray_sdk(handler):
    # When the runtime imports the handler module
    loaded = loaded_after(handler)

    # Then it is loaded with Powertools' logger, but no task type module, no X-Ray SDK and nothing X-Ray would patch
    assert handler in loaded and "aws_lambda_powertools.logging" in loaded
    assert loaded & type_modules() == set()
    assert {module for module in loaded if module.split(".")[0] in ("aws_xray_sdk", *UNTRACED_LIBRARIES)} == set()


def test_the_probe_sees_type_modules_and_the_xray_sdk_when_they_are_imported():
    # The check itself: an empty intersection above means something
    loaded = loaded_after("validate_task.handler", "task_types.text_stats", "aws_xray_sdk.core")

    assert {"task_types.text_stats", "aws_xray_sdk.core"} <= loaded


def test_a_request_imports_only_its_own_type():
    # Given a handler's init, when a request asks for one type
    code = (
        "import json, sys, validate_task.handler\n"
        "from task_types import get_task_type\n"
        "get_task_type('text.stats')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = loaded_after(code=code)

    # Then that type's module is loaded, and no other
    assert loaded & type_modules() == {"task_types.text_stats"}


def test_the_first_traced_call_creates_the_tracer_which_patches_the_aws_sdk_only():
    # Given a traced function, as the logic modules declare them (decorated at import)
    code = (
        "import json, sys\n"
        "from task_common.observability import tracer\n"
        "@tracer.capture_method\n"
        "def add(a, b):\n"
        "    return a + b\n"
        "before = 'aws_xray_sdk' in sys.modules\n"
        "answer = add(2, b=3)\n"
        "print(json.dumps({'before': before, 'answer': answer, 'modules': sorted(sys.modules)}))\n"
    )
    seen: dict[str, Any] = json.loads(_run(code))

    # Then the X-Ray SDK was not loaded before the call, the call returned its result through the tracer, and the
    # tracer patched botocore but imported none of the libraries it does not trace
    assert seen["before"] is False
    assert seen["answer"] == 5
    modules = set(seen["modules"])
    assert {"aws_xray_sdk.core", "aws_xray_sdk.ext.botocore.patch"} <= modules
    assert {module for module in modules if module.split(".")[0] in UNTRACED_LIBRARIES} == set()
