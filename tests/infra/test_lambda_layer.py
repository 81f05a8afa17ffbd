"""The functions' Powertools layer is the release the tests and the local workers run (docs/AWS-REVIEW.md, Lambda)."""

import re
import tomllib
from importlib.metadata import version
from typing import Any

from infra.constructs.functions import POWERTOOLS_LAYER_PARAMETER, POWERTOOLS_VERSION
from tests.conftest import ROOT
from tests.infra.test_template import resources_of

POWERTOOLS_PARAMETERS = re.compile(
    r"^/aws/service/powertools/python/(?P<arch>[^/]+)/(?P<python>[^/]+)/(?P<release>.+)$"
)


def pinned(package: str) -> str:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pin,) = [d.split("==", 1)[1] for d in dependencies if d.split("==", 1)[0] == package]
    return pin


def layer_parameters(template: dict[str, Any]) -> dict[str, str]:
    """Template parameter name → the SSM parameter CloudFormation resolves for a Powertools layer ARN."""
    return {
        name: p["Default"]
        for name, p in template.get("Parameters", {}).items()
        if p["Type"] == "AWS::SSM::Parameter::Value<String>" and POWERTOOLS_PARAMETERS.match(p.get("Default", ""))
    }


def test_the_layer_is_resolved_from_one_release_never_latest(template):
    # CloudFormation resolves an SSM parameter type at every stack update ("Specify existing resources at runtime with
    # CloudFormation-supplied parameter types"): ".../latest" would deploy whatever release is newest that day.
    (parameter,) = layer_parameters(template).values()
    release = POWERTOOLS_PARAMETERS.match(parameter)["release"]  # type: ignore[index]

    assert parameter == POWERTOOLS_LAYER_PARAMETER
    assert release != "latest"
    assert re.fullmatch(r"\d+\.\d+\.\d+", release)


def test_the_layer_release_is_the_powertools_the_tests_and_local_workers_run(template):
    (parameter,) = layer_parameters(template).values()
    release = POWERTOOLS_PARAMETERS.match(parameter)["release"]  # type: ignore[index]

    assert release == POWERTOOLS_VERSION == pinned("aws-lambda-powertools") == version("aws-lambda-powertools")


def test_the_layer_matches_the_functions_runtime_and_architecture(template):
    (parameter,) = layer_parameters(template).values()
    match = POWERTOOLS_PARAMETERS.match(parameter)
    assert match is not None
    for logical_id, function in resources_of(template, "AWS::Lambda::Function").items():
        props = function["Properties"]
        assert props["Architectures"] == [match["arch"]], logical_id
        assert props["Runtime"] == match["python"], logical_id


def test_every_function_takes_the_pinned_layer(template):
    (name,) = layer_parameters(template)
    for logical_id, function in resources_of(template, "AWS::Lambda::Function").items():
        assert function["Properties"]["Layers"] == [{"Ref": name}], logical_id
