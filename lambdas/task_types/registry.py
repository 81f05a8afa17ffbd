"""Task types by name, discovered: every module of this package is one task type, except the framework modules
below and private ``_helpers``. Adding a type is adding its module (``taskrail new-type NAME`` writes one).

A type module defines ``TASK_TYPE = TaskType(name=..., ...)`` and is named after the type, dots as underscores
(``csv.summary`` lives in ``csv_summary.py``), so a module and its type cannot drift apart. Discovery lists the
package's folder, which is the Lambda asset's ``task_types/`` on AWS as it is ``lambdas/task_types/`` here.

A type's module is imported on its first use (``get_task_type``), so a function's init imports none and a request
imports only its own type; ``known_types()`` imports them all. The rule is checked whenever a module loads, and
every module loads at synth (the API's request model lists ``known_types()``), so a module that breaks it cannot
be deployed.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from pathlib import Path

from task_common.errors import ValidationFailed
from task_types.base import TaskType

PACKAGE = __name__.rpartition(".")[0]
PACKAGE_DIR = Path(__file__).resolve().parent
# Modules of the package that are not task types: the registry itself, the pieces types are built from.
FRAMEWORK_MODULES = frozenset({"base", "registry", "sources"})
# What API Gateway's request model and the scaffold accept as a type name: lowercase words joined by dots.
TYPE_NAME_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
MAX_TYPE_NAME_LENGTH = 64


class TaskTypeModuleError(TypeError):
    """A module of the package breaks the one-module-one-type rule (raised when it loads: at synth, in the tests,
    and by ``taskrail types``)."""


def module_name(type_name: str) -> str:
    """The module a type lives in: ``csv.summary`` → ``csv_summary``."""
    return type_name.replace(".", "_")


def type_modules(directory: Path = PACKAGE_DIR) -> list[str]:
    """Names of the modules in ``directory`` that must each be one task type."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules([str(directory)])
        if not info.ispkg and info.name not in FRAMEWORK_MODULES and not info.name.startswith("_")
    )


def _load(name: str) -> TaskType:
    module = importlib.import_module(f"{PACKAGE}.{name}")
    task_type = getattr(module, "TASK_TYPE", None)
    where = f"lambdas/{PACKAGE}/{name}.py"
    if not isinstance(task_type, TaskType):
        raise TaskTypeModuleError(
            f"{where} defines no TASK_TYPE = TaskType(...): every module of {PACKAGE} is one task type "
            f"(name a helper module _{name}.py)"
        )
    if not re.fullmatch(TYPE_NAME_PATTERN, task_type.name) or len(task_type.name) > MAX_TYPE_NAME_LENGTH:
        raise TaskTypeModuleError(
            f"{where}: type name {task_type.name!r} must match {TYPE_NAME_PATTERN} (at most {MAX_TYPE_NAME_LENGTH})"
        )
    if module_name(task_type.name) != name:
        raise TaskTypeModuleError(
            f"{where} defines {task_type.name!r}, which belongs in {module_name(task_type.name)}.py"
        )
    return task_type


@functools.cache
def _discovered() -> frozenset[str]:
    return frozenset(type_modules())


@functools.cache
def _loaded(module: str) -> TaskType:
    return _load(module)


def known_types() -> list[str]:
    return sorted(_loaded(module).name for module in _discovered())


def get_task_type(name: str) -> TaskType:
    module = module_name(name)
    # Only a discovered module is imported: never a framework module, a private helper or an arbitrary name.
    if module in _discovered() and (task_type := _loaded(module)).name == name:
        return task_type
    raise ValidationFailed(f"unknown task type {name[:100]!r}; known types: {', '.join(known_types())}")
