"""`taskrail new-type` writes a type that the registry finds and whose generated test passes as written;
`taskrail types` lists the registry's types with their params' JSON schemas."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from task_types import get_task_type, known_types
from taskrail.cli import app, stale_type_error
from taskrail.client import ApiError
from taskrail.scaffold import ROOT, ScaffoldError, new_type, parameters_line, stale_stack_hint, type_catalog

RUNNER = CliRunner(env={"COLUMNS": "250"})
UNIT = ROOT / "tests" / "unit"
# What the generated test needs of the unit tests' tree, and the registry tests it must keep green.
UNIT_SUPPORT = ("conftest.py", "fakes.py", "moto_aws.py", "scenarios.py", "task_types_support.py", "test_task_types.py")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the parts of a taskrail checkout that a new type touches and its tests run on."""
    shutil.copytree(ROOT / "lambdas", tmp_path / "lambdas", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    for name in UNIT_SUPPORT:
        shutil.copy(UNIT / name, tmp_path / "tests" / "unit" / name)
    shutil.copytree(UNIT / "fixtures", tmp_path / "tests" / "unit" / "fixtures")
    (tmp_path / "pytest.ini").write_text("[pytest]\npythonpath = lambdas\n")
    return tmp_path


def pytest_in(checkout: Path, *tests: str) -> subprocess.CompletedProcess[str]:
    """pytest run in ``checkout``, its own lambdas/ first on the path (not this tree's task_types)."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout / "lambdas")},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_new_type_writes_a_module_a_fixture_and_a_test_that_pass_as_generated(checkout):
    # When a user scaffolds report.word_count
    result = RUNNER.invoke(app, ["new-type", "report.word_count", "--root", str(checkout)])

    # Then three files are written and named
    assert result.exit_code == 0, result.output
    print(result.output)
    assert result.output.splitlines()[:3] == [
        "wrote lambdas/task_types/report_word_count.py",
        "wrote tests/unit/fixtures/task_types/report_word_count.params.json",
        "wrote tests/unit/test_type_report_word_count.py",
    ]
    # And the generated test passes, as do the registry's tests with the new type discovered in them
    run = pytest_in(checkout, "tests/unit/test_type_report_word_count.py", "tests/unit/test_task_types.py", "-rA")
    print(run.stdout[-2000:])
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASSED tests/unit/test_type_report_word_count.py::test_report_word_count_counts_the_words" in run.stdout
    assert "test_unknown_parameters_are_rejected_for_every_type[report.word_count]" in run.stdout


def test_the_generated_files_pass_the_linters(checkout):
    scaffold = new_type("report.word_count", checkout)
    config = str(ROOT / "pyproject.toml")
    python_files = [str(scaffold.module), str(scaffold.test)]

    for command in (["check", "--config", config], ["format", "--check", "--config", config]):
        ruff = subprocess.run(
            [str(Path(sys.executable).parent / "ruff"), *command, *python_files],
            capture_output=True,
            text=True,
            check=False,
        )
        assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    assert json.loads(scaffold.fixture.read_text()) == {"text": "hello taskrail"}


def test_a_module_of_the_package_without_its_test_fixture_fails_the_registry_tests(checkout):
    # Given a type module added by hand, without the fixture new-type would have written
    scaffold = new_type("report.word_count", checkout)
    scaffold.fixture.unlink()

    run = pytest_in(checkout, "tests/unit/test_task_types.py")

    assert run.returncode == 1
    assert "test_every_type_has_a_minimal_params_fixture_that_it_accepts[report.word_count]" in run.stdout


@pytest.mark.parametrize("name", ["Report.Words", "report", "report words", "report.", "a." + "b" * 63])
def test_new_type_refuses_a_name_the_api_could_not_accept(checkout, name):
    result = RUNNER.invoke(app, ["new-type", name, "--root", str(checkout)])

    assert result.exit_code == 1
    assert "is not a task type name: lowercase words joined by dots" in result.output
    assert list((checkout / "lambdas" / "task_types").glob("report*")) == []


def test_new_type_refuses_an_existing_type(checkout):
    result = RUNNER.invoke(app, ["new-type", "text.stats", "--root", str(checkout)])

    assert result.exit_code == 1
    assert "text.stats exists already: lambdas/task_types/text_stats.py" in result.output


def test_new_type_outside_a_checkout_says_so(tmp_path):
    with pytest.raises(ScaffoldError, match="has no lambdas/task_types/: run new-type in a taskrail checkout"):
        new_type("report.words", tmp_path)


def test_types_lists_every_registered_type_with_its_params():
    result = RUNNER.invoke(app, ["types"])

    assert result.exit_code == 0, result.output
    print(result.output)
    for name in known_types():
        assert name in result.output
    assert "seconds*: number, steps: integer = 10" in result.output  # diagnostic.sleep
    assert "a long task with steady progress" in result.output


def test_types_json_gives_each_types_params_json_schema_from_its_model():
    result = RUNNER.invoke(app, ["types", "--json"])

    listed = json.loads(result.output)
    assert [entry["type"] for entry in listed] == known_types()
    by_name = {entry["type"]: entry for entry in listed}
    sleep = by_name["diagnostic.sleep"]["paramsSchema"]
    assert sleep == get_task_type("diagnostic.sleep").params_model.model_json_schema(by_alias=True)
    assert sleep["required"] == ["seconds"] and sleep["additionalProperties"] is False
    assert "hasHeader" in by_name["csv.summary"]["paramsSchema"]["properties"]  # names as submissions write them


def test_the_catalog_summary_is_the_modules_first_paragraph_without_the_type_name():
    (echo,) = [info for info in type_catalog() if info.name == "diagnostic.echo"]

    assert echo.summary.startswith("returns its parameters as its result")


def test_parameters_line_marks_required_and_defaults():
    schema = {
        "properties": {"a": {"type": "string"}, "b": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": 3}},
        "required": ["a"],
    }
    assert parameters_line(schema) == "a*: string, b: integer = 3"
    assert parameters_line({"properties": {}}) == "(none)"


def test_an_api_refusal_of_a_type_this_checkout_has_hints_at_restarting_the_stack():
    refusal = ApiError(400, 'invalid request body: [instance value ("text.stats") not found in enum (possible ...)]')

    stale = stale_type_error(refusal, "text.stats")

    assert stale is not None and stale.status == 400
    assert stale.hint.startswith("text.stats is in lambdas/task_types/ but the stack's API predates it: restart")
    assert stale_type_error(ApiError(400, refusal.message), "image.resize") is None  # unknown here too: no hint
    assert stale_type_error(ApiError(503, refusal.message), "text.stats") is None
    assert stale_stack_hint("text.stats", "invalid request body: [object has missing required properties]") is None
