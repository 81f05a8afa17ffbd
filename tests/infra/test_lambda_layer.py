"""The functions' libraries are our own layer, built from the versions the tests and the local workers run
(docs/AWS-REVIEW.md §13): not AWS's public Powertools layer, whose dependencies are resolved unpinned when AWS builds
it, so which pydantic it holds is unknown without AWS."""

import ast
import json
import re
import sys
from email.parser import Parser
from importlib import metadata
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra import layer
from infra.constructs import functions
from tests.conftest import ROOT
from tests.infra.test_template import resources_of

LAMBDAS = ROOT / "lambdas"
ELF_MACHINE_AARCH64 = 183  # e_machine of an ELF file built for arm64


def the_layer(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (item,) = resources_of(template, "AWS::Lambda::LayerVersion").items()
    return item


@pytest.fixture(scope="module")
def deployed_layer() -> Path:
    """The folder the synth zips as the layer's asset (the real synth's cdk.out, never a mutated template's)."""
    from infra.synth import synth

    template_path = synth()
    _, resource = the_layer(json.loads(template_path.read_text()))
    asset_hash = resource["Properties"]["Content"]["S3Key"].removesuffix(".zip")
    assets = json.loads((template_path.parent / template_path.name.replace(".template.", ".assets.")).read_text())
    folder = template_path.parent / assets["files"][asset_hash]["source"]["path"]
    assert (folder / "python").is_dir(), folder
    return folder


def distributions(layer_dir: Path) -> dict[str, metadata.PathDistribution]:
    found = {}
    for info in sorted((layer_dir / "python").glob("*.dist-info")):
        distribution = metadata.PathDistribution(info)
        found[canonicalize_name(distribution.metadata["Name"])] = distribution
    return found


def test_every_function_takes_the_one_layer_of_ours_and_no_ssm_parameter_remains(template):
    layer_id, resource = the_layer(template)
    props = resource["Properties"]
    text = json.dumps(template)

    assert "/aws/service/powertools" not in text
    ssm_parameters = [p["Default"] for p in template.get("Parameters", {}).values() if "SSM" in p["Type"]]
    assert ssm_parameters == ["/cdk-bootstrap/hnb659fds/version"]  # CDK's own BootstrapVersion, nothing else
    assert props["Content"]["S3Key"].endswith(".zip")
    for logical_id, function in resources_of(template, "AWS::Lambda::Function").items():
        function_props = function["Properties"]
        assert function_props["Layers"] == [{"Ref": layer_id}], logical_id
        assert props["CompatibleRuntimes"] == [function_props["Runtime"]] == ["python3.13"], logical_id
        assert props["CompatibleArchitectures"] == function_props["Architectures"] == ["arm64"], logical_id


def test_the_deployed_layer_holds_exactly_the_pinned_versions_the_local_workers_run(deployed_layer):
    held = {name: d.version for name, d in distributions(deployed_layer).items()}
    pins = layer.pyproject_pins()

    assert held == layer.requirements()
    for name in layer.ROOTS:
        assert held[canonicalize_name(name)] == pins[canonicalize_name(name)], name
    for name, version in held.items():
        # The local workers import this virtualenv's site-packages (taskrail/local/functions.py).
        assert version == metadata.version(name), name
    print(f"layer holds {sorted(held.items())}")


def test_every_requirement_of_the_layers_packages_is_met_inside_the_layer_or_by_the_runtime(deployed_layer):
    held = distributions(deployed_layer)
    for name, distribution in held.items():
        for line in distribution.requires or []:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate(dict(layer.TARGET_ENVIRONMENT)):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency in {canonicalize_name(n) for n in layer.RUNTIME_PROVIDED}:
                continue
            assert dependency in held, f"{name} needs {line}"
            assert requirement.specifier.contains(held[dependency].version, prereleases=True), f"{name} needs {line}"
    pydantic_core_pin = [r for r in held["pydantic"].requires or [] if r.startswith("pydantic-core")]
    assert pydantic_core_pin == [f"pydantic-core=={held['pydantic-core'].version}"]


def test_the_layers_compiled_code_is_built_for_cpython_3_13_on_arm64(deployed_layer):
    python = deployed_layer / "python"
    extensions = sorted(python.rglob("*.so"))
    core = python / "pydantic_core" / "_pydantic_core.cpython-313-aarch64-linux-gnu.so"

    assert core in extensions
    for extension in extensions:
        assert extension.name.endswith(".cpython-313-aarch64-linux-gnu.so"), extension
        header = extension.read_bytes()[:20]
        assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == ELF_MACHINE_AARCH64, extension
    for wheel in python.glob("*.dist-info/WHEEL"):
        tags = [v for k, v in Parser().parsestr(wheel.read_text()).items() if k == "Tag"]
        for tag in tags:
            assert re.fullmatch(r"py[23]-none-any|cp313-cp313-manylinux(2014|_2_\d+)_aarch64", tag), (wheel, tag)
    assert not list(python.rglob("*.pyc")), "compiled for the build machine's Python, not 3.13"


def test_boto3_and_botocore_are_left_to_the_runtime(deployed_layer):
    held = distributions(deployed_layer)
    top_level = {p.name for p in (deployed_layer / "python").iterdir()}
    for name in ("boto3", "botocore", "s3transfer"):
        assert name not in held
        assert name not in top_level


def handler_imports() -> set[str]:
    """Top-level modules ``lambdas/`` imports that are neither the standard library nor ``lambdas/``'s own."""
    own = {p.name for p in LAMBDAS.iterdir() if p.is_dir()}
    found = set()
    for path in LAMBDAS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m not in own}


def test_the_layer_holds_every_library_the_handlers_import(deployed_layer):
    imported = handler_imports()
    top_level = {p.name.removesuffix(".py") for p in (deployed_layer / "python").iterdir()}

    assert {"aws_lambda_powertools", "pydantic"} <= imported
    assert imported - top_level == {"boto3", "botocore"}


def test_a_synth_without_the_built_layer_stops_and_says_run_make_setup(tmp_path, monkeypatch):
    stack = cdk.Stack(cdk.App(), "LayerCheck")
    monkeypatch.setattr(layer, "LAYER_DIR", tmp_path / "lambda-layer")
    with pytest.raises(layer.LayerNotBuilt, match="is missing: run make setup"):
        functions.dependency_layer_version(stack)

    (tmp_path / "lambda-layer" / "python").mkdir(parents=True)
    (tmp_path / "lambda-layer" / layer.STAMP_NAME).write_text(layer.digest(["pydantic==2.0.0"]))
    with pytest.raises(layer.LayerNotBuilt, match=r"built for other pins than pyproject\.toml's: run make setup"):
        functions.dependency_layer_version(stack)


def test_setup_rebuilds_the_layer_only_when_the_pins_change(tmp_path, monkeypatch):
    installs: list[list[str]] = []

    def fake_pip(command: list[str], check: bool) -> None:
        installs.append(command)
        (Path(command[command.index("--target") + 1]) / "pydantic").mkdir(parents=True)

    monkeypatch.setattr(layer.subprocess, "run", fake_pip)
    layer_dir = tmp_path / "lambda-layer"
    (layer_dir / "python").mkdir(parents=True)
    (layer_dir / layer.STAMP_NAME).write_text(layer.digest(["pydantic==2.0.0"]) + "\n")

    assert layer.build(layer_dir) is True
    assert layer.build(layer_dir) is False
    (command,) = installs
    assert command[-len(layer.requirement_lines()) :] == layer.requirement_lines()
    assert {"--no-deps", "--only-binary=:all:", "manylinux2014_aarch64", "3.13", "cp313"} <= set(command)
    assert layer.built_digest(layer_dir) == layer.digest()
    assert [p.name for p in (layer_dir / "python").iterdir()] == ["pydantic"]
