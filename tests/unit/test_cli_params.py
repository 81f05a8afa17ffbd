"""taskrail/cli_params.py coerces the CLI's plain parameters as typer does, without pydantic (issue 13 latency)."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from typer import _coercion

from taskrail import cli_params
from taskrail.cli import app

# Raw values as the command line (or an environment variable) gives them, and the defaults typer passes as they are.
SAMPLES: dict[Any, tuple[Any, ...]] = {
    str: ("t-1", "", " spaced ", "ünïcode", "-p", b"bytes"),
    int: ("20", "0", "-1", "+3", " 7 ", "1.5", "abc", "", "1_000", 5, 0, True, 2.0),
    float: ("1", "0.1", "0.05", "-2", "1e3", ".5", "abc", "", "nan", 3600, 1.0, 0.0),
    bool: (True, False),
    Path: ("state.json", "/no/such/dir/file", ".", Path("x.json")),
}
LIST_SAMPLES = (["a", "b"], ("a",), [], "single")


def every_parameter() -> list[tuple[str, Any]]:
    found = []

    def walk(group: Any, prefix: str) -> None:
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                walk(command, f"{prefix}{name} ")
                continue
            found.extend((f"{prefix}{name} {param.name}", (command, param)) for param in command.params)

    walk(typer.main.get_command(app), "")
    return found


def outcome(coerce: Any, value: Any) -> tuple[str, Any]:
    """The coerced value, or typer's error message (compared by repr: nan is nan)."""
    try:
        return "value", coerce(value)
    except typer.BadParameter as error:
        return "error", error.format_message()


PARAMETERS = every_parameter()


def test_the_typer_this_relies_on_is_the_one_installed() -> None:
    assert typer.__version__ == cli_params.TYPER_VERSION
    for symbol, fragments in cli_params.DEPENDS:
        module_name, _, attribute_path = symbol.partition(".")
        owner: Any = importlib.import_module(module_name)
        for part in attribute_path.split("."):
            owner = getattr(owner, part) if hasattr(owner, part) else importlib.import_module(f"{module_name}.{part}")
            module_name = f"{module_name}.{part}"
        source = inspect.getsource(owner)
        assert [f for f in fragments if f not in source] == [], symbol
    assert list(inspect.signature(_coercion.build_runtime_param).parameters) == ["descriptor"]
    assert cli_params.installed()  # importing taskrail.cli installed it


def test_every_cli_parameter_is_plain() -> None:
    # A new parameter of another kind would silently bring pydantic back (typer's own coercion): say so here.
    assert [name for name, (_, param) in PARAMETERS if not cli_params.is_plain(param.type_descriptor)] == []


@pytest.mark.parametrize(("name", "command_param"), PARAMETERS, ids=[name for name, _ in PARAMETERS])
def test_a_plain_parameter_is_coerced_exactly_as_typer_coerces_it(name: str, command_param: Any) -> None:
    command, param = command_param
    descriptor = param.type_descriptor
    ctx = typer.Context(command)
    lean = cli_params.build_runtime_param(descriptor)
    typers = cli_params._typers_own(descriptor)  # typer's own coercion (pydantic)
    assert isinstance(lean, cli_params.PlainParam)
    samples = LIST_SAMPLES if descriptor.is_list else SAMPLES[descriptor.annotation]
    for value in samples:
        # Given a raw value, when both coerce it, then both give the same value (and type) or the same error
        ours = outcome(lambda v: lean.coerce(v, param=param, ctx=ctx), value)
        theirs = outcome(lambda v: typers.coerce(v, param=param, ctx=ctx), value)
        assert (ours[0], repr(ours[1]), type(ours[1])) == (theirs[0], repr(theirs[1]), type(theirs[1])), value
