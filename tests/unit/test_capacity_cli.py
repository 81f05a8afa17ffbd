"""``taskrail capacity`` on the synthesized template: its JSON names the bottleneck the model finds in the template's
own settings, and the command loads neither CDK nor moto (a fresh interpreter, as the user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from taskrail.cost.definition import PATHS, definition_transitions, load_definition

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("moto", "taskrail.local.stack", "taskrail.local.services", "infra", "aws_cdk", "jsii")
PROBE = """
import json, sys
from taskrail.cli import app
try:
    app(sys.argv[1:], prog_name="taskrail")
except SystemExit as done:
    code = done.code
forbidden = {forbidden!r}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in forbidden or m.startswith(forbidden))
print("LOADED " + json.dumps(loaded), file=sys.stderr)
sys.exit(code or 0)
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE.format(forbidden=FORBIDDEN), *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _loaded(done: subprocess.CompletedProcess[str]) -> list[str]:
    line = next(line for line in done.stderr.splitlines() if line.startswith("LOADED "))
    return list(json.loads(line.removeprefix("LOADED ")))


def test_capacity_json_reads_the_template_and_loads_neither_cdk_nor_moto(
    template_path: Path, template: dict[str, Any]
) -> None:
    # Given the synthesized template, when the command runs on it with a small burst
    done = _run("capacity", "--template", str(template_path), "--burst", "20000", "--over", "60", "--json")
    # Then it answers JSON whose figures come from the template's settings
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    happy = report["paths"]["happy"]
    pipes = {p["logical_id"]: p for p in report["design"]["pipes"]}
    resources = template["Resources"]
    for logical_id, pipe in pipes.items():
        stream = resources[logical_id]["Properties"]["SourceParameters"]["DynamoDBStreamParameters"]
        assert pipe["parallelization_factor"] == stream.get("ParallelizationFactor", 1)
    limits = {limit["key"]: limit for limit in happy["limits"]}
    assert (
        happy["bottleneck"]
        == min((limit for limit in happy["limits"] if limit["sustained"]), key=lambda limit: limit["capacity"])["key"]
    )
    assert happy["sustained_tasks_per_s"] == limits[happy["bottleneck"]]["capacity"] > 0
    happy_spec = next(p for p in PATHS if p.name == "happy")
    assert happy["load"]["transitions"] == definition_transitions(load_definition(), happy_spec)
    assert happy["load"]["start_executions"] == 1
    assert set(report["paths"]) == {"happy", "rejected", "failed", "replayed"}
    assert happy["to_double"], "doubling always names something to raise"
    simulation = report["simulation"]
    assert simulation["burst"] == {"tasks": 20000, "over_s": 60.0}
    assert simulation["delivered_at_s"] >= simulation["finished_at_s"] >= simulation["accepted_at_s"] > 0
    # And nothing of the emulator or the CDK app was imported
    assert _loaded(done) == []


def test_capacity_refuses_a_bad_option_with_a_clear_message(template_path: Path) -> None:
    done = _run("capacity", "--template", str(template_path), "--duration", "ProcessTaskFunction=fast")
    assert done.returncode == 2
    assert "--duration takes FUNCTION=MS" in done.stderr


def test_the_transitions_per_path_agree_with_the_cost_models_reading_of_the_definition(
    template: dict[str, Any],
) -> None:
    from taskrail.capacity.design import path_loads, read_design

    loads = path_loads(read_design(template))
    definition = load_definition()
    for spec in PATHS:
        expected = definition_transitions(definition, spec)
        if spec.name in loads and expected is not None and not loads[spec.name].states[-1].startswith("recorder:"):
            assert loads[spec.name].transitions == expected, spec.name
    # The failed path: the lifecycle's states up to the failure, then the failure recorder's own (issue 19).
    failed = loads["failed"]
    lifecycle_part = [s for s in failed.states if ":" not in s]
    assert len(lifecycle_part) == definition_transitions(definition, next(p for p in PATHS if p.name == "failed"))
    assert failed.start_executions == 2 and failed.rule_invocations == 1
