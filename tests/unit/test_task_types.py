from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakes import InMemoryBlobStore, InMemoryTaskStore, a_task
from scenarios import read_fixture, read_json_fixture
from task_types_support import PARAMS_FIXTURES, minimal_params, params_fixture, rejection, run_task

from task_common.errors import PermanentTaskError, TaskCancelled, TransientTaskError, ValidationFailed
from task_types import TaskContext, get_task_type, known_types, registry
from task_types.diagnostic_poison import FIX_MARKER_KEY
from task_types.registry import FRAMEWORK_MODULES, PACKAGE_DIR, module_name

__all__ = ["rejection", "run_task"]  # test_task_types_mutants imports them from here


# The registry


SHIPPED_TYPES = {
    "csv.summary",
    "text.stats",
    "diagnostic.echo",
    "diagnostic.flaky",
    "diagnostic.poison",
    "diagnostic.sleep",
}


def test_unknown_type_is_rejected_with_known_types_listed():
    with pytest.raises(ValidationFailed) as raised:
        get_task_type("image.resize")

    assert str(raised.value) == f"unknown task type 'image.resize'; known types: {', '.join(known_types())}"
    assert known_types() == sorted(known_types())


def test_the_shipped_types_are_discovered():
    assert set(known_types()) >= SHIPPED_TYPES


def test_every_module_of_the_package_is_a_registered_type_and_every_type_a_module():
    # Given the package's folder as the file system lists it (not as discovery sees it)
    files = {path.stem for path in PACKAGE_DIR.glob("*.py")}
    must_be_types = {name for name in files if name not in FRAMEWORK_MODULES and not name.startswith("_")}

    # Then each of those modules is a registered type, and each registered type is one of those modules
    assert {module_name(name) for name in known_types()} == must_be_types
    for name in known_types():
        assert get_task_type(name).run.__module__ == f"task_types.{module_name(name)}", name


@pytest.mark.parametrize("type_name", known_types())
def test_every_type_has_a_minimal_params_fixture_that_it_accepts(type_name):
    assert params_fixture(type_name).exists(), f"add {params_fixture(type_name)} (the smallest params it accepts)"

    assert get_task_type(type_name).parse_params(minimal_params(type_name), user_id="alice")


def test_every_params_fixture_belongs_to_a_registered_type():
    fixtures = {path.name.removesuffix(".params.json") for path in PARAMS_FIXTURES.glob("*.params.json")}

    assert fixtures == {module_name(name) for name in known_types()}


@pytest.mark.parametrize("type_name", known_types())
def test_unknown_parameters_are_rejected_for_every_type(type_name):
    message = rejection(type_name, {**minimal_params(type_name), "surprise": 1})

    assert message == f"invalid params for {type_name}: surprise: Extra inputs are not permitted"


@pytest.mark.parametrize("type_name", known_types())
def test_params_that_are_not_an_object_are_rejected(type_name):
    assert "params must be a JSON object" in rejection(type_name, ["not", "an", "object"])


@pytest.fixture
def extra_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """Write a module into the task_types package (a second folder of it), as a user adding a file would."""
    import task_types

    monkeypatch.setattr(task_types, "__path__", [*task_types.__path__, str(tmp_path)])
    written: list[str] = []

    def write(name: str, source: str) -> None:
        (tmp_path / f"{name}.py").write_text(source)
        written.append(name)

    yield write
    for name in written:
        sys.modules.pop(f"task_types.{name}", None)


def test_a_module_without_a_task_type_fails_discovery_saying_what_to_do(extra_module, tmp_path):
    extra_module("helpers", "def shared(): ...\n")

    assert "helpers" in registry.type_modules(tmp_path)
    with pytest.raises(registry.TaskTypeModuleError) as raised:
        registry._load("helpers")
    assert str(raised.value) == (
        "lambdas/task_types/helpers.py defines no TASK_TYPE = TaskType(...): every module of task_types is one "
        "task type (name a helper module _helpers.py)"
    )


def test_a_private_module_is_not_a_type(extra_module, tmp_path):
    extra_module("_helpers", "def shared(): ...\n")

    assert registry.type_modules(tmp_path) == []


def test_a_type_in_a_module_not_named_after_it_fails_discovery(extra_module):
    extra_module(
        "report_words",
        "from task_types.diagnostic_echo import TASK_TYPE as ECHO\n"
        "from dataclasses import replace\n"
        "TASK_TYPE = replace(ECHO, name='report.lines')\n",
    )

    with pytest.raises(registry.TaskTypeModuleError, match=r"defines 'report.lines', which belongs in report_lines.py"):
        registry._load("report_words")


@pytest.mark.parametrize("bad_name", ["Report.Words", "report", "report..words", "report.words!", "a." + "b" * 63])
def test_a_type_name_that_the_api_could_not_accept_fails_discovery(extra_module, bad_name):
    extra_module(
        "oddly_named",
        "from task_types.diagnostic_echo import TASK_TYPE as ECHO\n"
        "from dataclasses import replace\n"
        f"TASK_TYPE = replace(ECHO, name={bad_name!r})\n",
    )

    with pytest.raises(registry.TaskTypeModuleError, match="must match"):
        registry._load("oddly_named")


def test_python_style_names_are_not_accepted_for_camel_case_parameters():
    assert "has_header: Extra inputs are not permitted" in rejection("csv.summary", {"csv": "a", "has_header": False})


def test_progress_is_clamped_to_0_100_and_repeats_are_not_written():
    # Given a running task
    tasks = InMemoryTaskStore(a_task())
    context = TaskContext(task_id="task-1", user_id="alice", attempt=1, store=tasks, blobs=InMemoryBlobStore())

    # When progress is reported out of range and repeatedly
    for percent in (-5, 0, 42.9, 42, 250, 100):
        context.report_progress(percent)

    # Then each distinct, clamped value is written once
    assert tasks.progress["task-1"] == [0, 42, 100]


# csv.summary


def test_csv_summary_of_a_sales_file_counts_distinct_numeric_and_top_values():
    result = run_task("csv.summary", {"csv": read_fixture("csv_summary_sales.csv")})

    assert result == read_json_fixture("csv_summary_sales.expected.json")


def test_csv_summary_reads_the_owners_uploaded_file():
    # Given alice's CSV uploaded under her folder
    blobs = InMemoryBlobStore(objects={"users/alice/sales.csv": read_fixture("csv_summary_sales.csv")})

    # When summarised from source
    result = run_task("csv.summary", {"source": "users/alice/sales.csv"}, blobs=blobs)

    # Then the summary is the same as for the inline text
    assert result == read_json_fixture("csv_summary_sales.expected.json")


def test_csv_summary_without_header_names_columns_by_position():
    result = run_task("csv.summary", {"csv": "1;x\n2;y;extra\n", "delimiter": ";", "hasHeader": False})

    assert result["rowCount"] == 2
    assert [column["name"] for column in result["columns"]] == ["column1", "column2", "column3"]
    assert result["columns"][0]["numeric"] == {"min": 1, "max": 2, "mean": 1.5, "stddev": 0.5}
    assert "numeric" not in result["columns"][1]
    assert result["columns"][2] == {
        "name": "column3",
        "count": 1,
        "empty": 1,
        "distinct": 1,
        "top": [{"value": "extra", "count": 1}],
    }


def test_csv_summary_of_an_empty_file_has_no_rows_and_no_columns():
    assert run_task("csv.summary", {"csv": ""}) == {"rowCount": 0, "columns": []}


def test_csv_summary_reports_progress_while_reading_rows():
    # Given a CSV of a hundred rows
    tasks = InMemoryTaskStore(a_task(type="csv.summary"))
    csv_text = "n\n" + "".join(f"{n}\n" for n in range(100))

    # When summarised
    run_task("csv.summary", {"csv": csv_text}, tasks=tasks)

    # Then progress rose in steps of about ten percent
    progress = tasks.progress["task-1"]
    assert progress == sorted(progress)
    assert len(progress) >= 9
    assert progress[-1] >= 90


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "params: exactly one of csv or source is required"),
        (
            {"csv": "a", "source": "users/alice/a.csv"},
            "params: exactly one of csv or source is required",
        ),
        ({"csv": "a", "delimiter": ";;"}, "delimiter: String should have at most 1 character"),
        ({"csv": "a", "hasHeader": "perhaps"}, "hasHeader: Input should be a valid boolean"),
    ],
)
def test_csv_summary_rejects_invalid_params_with_a_readable_summary(params, message):
    assert message in rejection("csv.summary", params)


def test_csv_summary_rejects_inline_csv_over_5_mb():
    message = rejection("csv.summary", {"csv": "x" * (5 * 1024 * 1024 + 1)})

    assert "csv: must be at most 5 MB; upload it and give source" in message
    assert "xxxx" not in message


@pytest.mark.parametrize("type_name", ["csv.summary", "text.stats"])
@pytest.mark.parametrize(
    "source",
    [
        "users/bob/data.csv",
        "data.csv",
        "users/alice/",
        "users/alicex/data.csv",
        "tasks/task-1/input.json",
        "users/alice/../bob/data.csv",
        "users/alice//data.csv",
    ],
)
def test_a_source_outside_the_owners_folder_is_rejected(type_name, source):
    message = rejection(type_name, {"source": source})

    assert message.startswith(f"invalid params for {type_name}: source: must")


def test_a_source_in_the_owners_subfolder_is_accepted():
    params = get_task_type("text.stats").parse_params({"source": "users/alice/2025/notes.txt"}, user_id="alice")

    assert params.source == "users/alice/2025/notes.txt"


def test_a_missing_source_is_a_permanent_failure():
    with pytest.raises(PermanentTaskError, match=r"source users/alice/gone.csv does not exist"):
        run_task("csv.summary", {"source": "users/alice/gone.csv"})


# text.stats


def test_text_stats_counts_lines_words_and_top_terms_without_stopwords():
    result = run_task("text.stats", {"text": read_fixture("text_stats_river.txt")})

    assert result == read_json_fixture("text_stats_river.expected.json")


def test_text_stats_reads_the_owners_uploaded_file():
    blobs = InMemoryBlobStore(objects={"users/alice/river.txt": read_fixture("text_stats_river.txt")})

    result = run_task("text.stats", {"source": "users/alice/river.txt"}, blobs=blobs)

    assert result == read_json_fixture("text_stats_river.expected.json")


def test_text_stats_breaks_ties_alphabetically_and_honours_top():
    result = run_task("text.stats", {"text": "beta alpha gamma beta alpha the the the", "top": 2})

    assert result["topTerms"] == [{"term": "alpha", "count": 2}, {"term": "beta", "count": 2}]


@pytest.mark.parametrize("top", [0, 101, "ten"])
def test_text_stats_rejects_top_outside_1_to_100(top):
    assert "top: " in rejection("text.stats", {"text": "a", "top": top})


# diagnostic.flaky


def test_flaky_fails_exactly_n_times_then_succeeds():
    # Given a flaky task asked to fail three times
    tasks = InMemoryTaskStore(a_task(type="diagnostic.flaky"))
    params = {"failures": 3}

    # When it is invoked until it succeeds
    failures = []
    for _ in range(3):
        with pytest.raises(TransientTaskError) as raised:
            run_task("diagnostic.flaky", params, tasks=tasks)
        failures.append(str(raised.value))
    result = run_task("diagnostic.flaky", params, tasks=tasks)

    # Then it failed exactly three times, counting on the task, then succeeded
    assert failures == [f"diagnostic.flaky failure {k} of 3" for k in (1, 2, 3)]
    assert result == {"failuresBeforeSuccess": 3}
    assert tasks.counters["task-1", "diagnosticFailures"] == 4


def test_flaky_with_default_params_fails_twice():
    tasks = InMemoryTaskStore(a_task(type="diagnostic.flaky"))
    for _ in range(2):
        with pytest.raises(TransientTaskError):
            run_task("diagnostic.flaky", {}, tasks=tasks)

    assert run_task("diagnostic.flaky", {}, tasks=tasks) == {"failuresBeforeSuccess": 2}


def test_flaky_with_zero_failures_succeeds_at_once():
    assert run_task("diagnostic.flaky", {"failures": 0}) == {"failuresBeforeSuccess": 0}


@pytest.mark.parametrize("failures", [-1, 11])
def test_flaky_rejects_failures_outside_0_to_10(failures):
    assert "failures: " in rejection("diagnostic.flaky", {"failures": failures})


# diagnostic.poison


def test_poison_fails_permanently_until_the_fix_marker_exists():
    # Given no fix marker in the bucket
    blobs = InMemoryBlobStore()

    # When run, then it fails permanently, every time
    for _ in range(2):
        with pytest.raises(PermanentTaskError) as raised:
            run_task("diagnostic.poison", {}, blobs=blobs)
        assert str(raised.value) == "poison task: the fix marker diagnostics/poison-fixed does not exist"

    # When an operator creates the marker, then it succeeds
    blobs.put_text(FIX_MARKER_KEY, "")
    assert run_task("diagnostic.poison", {}, blobs=blobs) == {"fixed": True}


# diagnostic.sleep


def test_sleep_reports_progress_after_each_step():
    tasks = InMemoryTaskStore(a_task(type="diagnostic.sleep"))

    result = run_task("diagnostic.sleep", {"seconds": 0.01, "steps": 4}, tasks=tasks)

    assert result == {"slept": 0.01}
    assert tasks.progress["task-1"] == [25, 50, 75, 100]


def test_sleep_stops_with_task_cancelled_once_the_task_is_cancelled():
    # Given a task its owner cancels after two progress reports
    tasks = InMemoryTaskStore(a_task(type="diagnostic.sleep"))
    tasks.cancel("task-1", after_progress_updates=2)

    # When it sleeps in ten steps, then the third report stops it
    with pytest.raises(TaskCancelled):
        run_task("diagnostic.sleep", {"seconds": 0.01, "steps": 10}, tasks=tasks)
    assert tasks.progress["task-1"] == [10, 20]


# The limits: 0 < seconds <= 840 (a minute below the process function's 15-minute timeout), 1 <= steps <= 100.
SLEEP_LIMIT_SECONDS = 840


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"seconds": 0},
        {"seconds": SLEEP_LIMIT_SECONDS + 0.001},
        {"seconds": 1, "steps": 0},
        {"seconds": 1, "steps": 101},
    ],
)
def test_sleep_rejects_seconds_or_steps_out_of_range(params):
    rejection("diagnostic.sleep", params)


@pytest.mark.parametrize(
    "params",
    [{"seconds": SLEEP_LIMIT_SECONDS}, {"seconds": 0.001, "steps": 1}, {"seconds": 1, "steps": 100}],
)
def test_sleep_accepts_seconds_and_steps_at_their_limits(params):
    parsed = get_task_type("diagnostic.sleep").parse_params(params, user_id="alice")

    assert parsed.model_dump(include=set(params)) == params
