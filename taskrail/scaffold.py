"""Task types from the CLI: `taskrail types` (the registry with each type's params schema) and
`taskrail new-type NAME` (a new type's module, its minimal-params fixture and its test, which pass as written).

A task type is one module of ``lambdas/task_types/`` (docs/TASK-TYPES.md); the registry discovers it, the API's
request model lists it once the template is synthesized again, and docs/openapi.json is regenerated from that.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from task_types import get_task_type, known_types
from task_types.registry import MAX_TYPE_NAME_LENGTH, TYPE_NAME_PATTERN, module_name

ROOT = Path(__file__).resolve().parents[1]
TYPES_DIR = Path("lambdas") / "task_types"
PARAMS_FIXTURES_DIR = Path("tests") / "unit" / "fixtures" / "task_types"
TESTS_DIR = Path("tests") / "unit"


class ScaffoldError(ValueError):
    """A type that cannot be written: the message says why and what to do."""


@dataclass(frozen=True)
class TypeInfo:
    name: str
    summary: str
    params_schema: dict[str, Any]


def type_catalog() -> list[TypeInfo]:
    """Every registered type: its name, its module's first docstring line, its params' JSON schema (camelCase
    names, as submissions write them)."""
    catalog = []
    for name in known_types():
        task_type = get_task_type(name)
        module = sys.modules[task_type.run.__module__]
        summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        summary = re.sub(rf"^``{re.escape(name)}``:\s*", "", summary)
        schema = task_type.params_model.model_json_schema(by_alias=True, mode="validation")
        catalog.append(TypeInfo(name=name, summary=summary, params_schema=schema))
    return catalog


def type_schemas() -> dict[str, dict[str, Any]]:
    """Type name → its params' JSON schema (for forms, e.g. the console's)."""
    return {info.name: info.params_schema for info in type_catalog()}


def parameters_line(schema: dict[str, Any]) -> str:
    """``text*: string, top: integer = 10`` — a schema's properties in one line (* = required)."""
    required = set(schema.get("required", []))
    parts = []
    for name, prop in schema.get("properties", {}).items():
        kinds = [p.get("type", "any") for p in prop.get("anyOf", [])] or [prop.get("type", "any")]
        kind = " | ".join(k for k in kinds if k != "null") or "any"
        default = f" = {json.dumps(prop['default'])}" if "default" in prop and prop["default"] is not None else ""
        parts.append(f"{name}{'*' if name in required else ''}: {kind}{default}")
    return ", ".join(parts) or "(none)"


@dataclass(frozen=True)
class Scaffold:
    name: str
    module: Path
    fixture: Path
    test: Path

    @property
    def files(self) -> list[Path]:
        return [self.module, self.fixture, self.test]


def new_type(name: str, root: Path = ROOT) -> Scaffold:
    """Write the module, fixture and test of a new task type ``name`` under ``root`` (a taskrail checkout)."""
    if not re.fullmatch(TYPE_NAME_PATTERN, name) or len(name) > MAX_TYPE_NAME_LENGTH:
        raise ScaffoldError(
            f"{name!r} is not a task type name: lowercase words joined by dots, e.g. report.word_count "
            f"(at most {MAX_TYPE_NAME_LENGTH} characters)"
        )
    if not (root / TYPES_DIR).is_dir():
        raise ScaffoldError(f"{root} has no {TYPES_DIR}/: run new-type in a taskrail checkout (or pass --root)")
    module = module_name(name)
    scaffold = Scaffold(
        name=name,
        module=root / TYPES_DIR / f"{module}.py",
        fixture=root / PARAMS_FIXTURES_DIR / f"{module}.params.json",
        test=root / TESTS_DIR / f"test_type_{module}.py",
    )
    taken = [path for path in scaffold.files if path.exists()]
    if taken:
        raise ScaffoldError(f"{name} exists already: {', '.join(str(p.relative_to(root)) for p in taken)}")
    class_name = "".join(part.capitalize() for part in module.split("_")) + "Params"
    values = {"name": name, "module": module, "class_name": class_name}
    scaffold.fixture.parent.mkdir(parents=True, exist_ok=True)
    scaffold.module.write_text(MODULE_TEMPLATE.format(**values))
    scaffold.fixture.write_text(json.dumps(FIXTURE_PARAMS) + "\n")
    scaffold.test.write_text(TEST_TEMPLATE.format(**values))
    return scaffold


def stale_stack_hint(task_type: str, message: str) -> str | None:
    """The hint for an API refusal of ``task_type`` as unknown when this checkout's registry has it: the running
    stack's API was built before the type was added."""
    if "not found in enum" not in message or task_type not in known_types():
        return None
    return (
        f"{task_type} is in lambdas/task_types/ but the stack's API predates it: restart `taskrail local up` "
        "(a deployed stack: deploy again) so that its request model lists the new type"
    )


FIXTURE_PARAMS = {"text": "hello taskrail"}

MODULE_TEMPLATE = '''"""``{name}``: counts the words of a text (written by `taskrail new-type`: make it yours).

docs/TASK-TYPES.md says what each part does: the params model, progress, errors, results.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from task_common.errors import PermanentTaskError
from task_types.base import TaskContext, TaskParams, TaskType


class {class_name}(TaskParams):
    """The task's params: camelCase names, nothing unknown; a submission that fails this model is REJECTED."""

    text: str = Field(min_length=1, max_length=100_000, description="the text whose words are counted")


def run(params: {class_name}, ctx: TaskContext) -> dict[str, Any]:
    """The work: raise TransientTaskError to be retried, PermanentTaskError to fail the task at once."""
    words = params.text.split()
    if not words:
        raise PermanentTaskError("the text has no words, only white space")
    ctx.report_progress(50)
    return {{"words": len(words), "characters": len(params.text)}}


TASK_TYPE = TaskType(name="{name}", params_model={class_name}, run=run)
'''

TEST_TEMPLATE = '''"""``{name}`` (written by `taskrail new-type`: change it with the type)."""

from __future__ import annotations

import pytest
from fakes import InMemoryTaskStore, a_task
from task_types_support import minimal_params, rejection, run_task

from task_common.errors import PermanentTaskError


def test_{module}_counts_the_words_of_its_minimal_params():
    task = a_task(type="{name}")
    tasks = InMemoryTaskStore(task)

    result = run_task("{name}", minimal_params("{name}"), tasks=tasks)

    assert result == {{"words": 2, "characters": 14}}
    assert tasks.progress[task.task_id] == [50]


def test_{module}_rejects_an_empty_text():
    assert rejection("{name}", {{"text": ""}}) == (
        "invalid params for {name}: text: String should have at least 1 character"
    )


def test_{module}_fails_permanently_on_a_text_without_words():
    with pytest.raises(PermanentTaskError, match="no words"):
        run_task("{name}", {{"text": "   "}})
'''
