"""The deploy path: the pinned CDK CLI (package.json) synthesizes the app as `cdk deploy` would, in every environment.

The CLI sets CDK_DEFAULT_REGION (from AWS_REGION, else us-east-1) and CDK_DEFAULT_ACCOUNT (from credentials, else
it leaves it unset) for the app, which turns the pseudo parameters in ARNs into literals: a finding acknowledged
for one spelling only fails the synth in the other. Offline: no credentials, no instance metadata, no version
check, no notices, no telemetry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.synth import STACK_NAME
from workflows.lifecycle_type import CONTEXT_KEY, EXPRESS

ROOT = Path(__file__).resolve().parents[2]
CLI_TIMEOUT_SECONDS = 300  # a hang guard: one synth takes seconds
BANNER_MARKERS = ("end-of-life", "!!  ", "not supported anymore", "Please upgrade to a supported node")


@dataclass(frozen=True)
class Environment:
    name: str
    variables: dict[str, str]
    expected: str  # the stack's environment in the cloud assembly manifest
    region: str  # the region cfn-lint checks the template against
    context: tuple[str, ...] = ()  # `cdk synth -c KEY=VALUE`


ENVIRONMENTS = (
    Environment(
        "eu-west-1",
        {"AWS_REGION": "eu-west-1", "CDK_DEFAULT_REGION": "eu-west-1", "CDK_DEFAULT_ACCOUNT": "111111111111"},
        "aws://111111111111/eu-west-1",
        "eu-west-1",
    ),
    Environment(
        "ap-southeast-2",
        {"AWS_REGION": "ap-southeast-2", "CDK_DEFAULT_REGION": "ap-southeast-2", "CDK_DEFAULT_ACCOUNT": "222222222222"},
        "aws://222222222222/ap-southeast-2",
        "ap-southeast-2",
    ),
    # Nothing set and no credentials: the CLI picks us-east-1 and leaves the account to the deploy.
    Environment("unset", {}, "aws://unknown-account/us-east-1", "us-east-1"),
    # The deploy-time choice of an EXPRESS lifecycle (infra/app.py): nag- and lint-clean as well.
    Environment("express", {}, "aws://unknown-account/us-east-1", "us-east-1", context=(f"{CONTEXT_KEY}={EXPRESS}",)),
)


@dataclass(frozen=True)
class CliSynth:
    environment: Environment
    outdir: Path
    returncode: int
    output: str  # stdout and stderr
    lint: subprocess.CompletedProcess[str] | None  # cfn-lint on the template, when the synth wrote one

    @property
    def template_path(self) -> Path:
        return self.outdir / f"{STACK_NAME}.template.json"

    def nag_report(self) -> dict[str, Any]:
        report = json.loads((self.outdir / "validation-report.json").read_text())
        nag: dict[str, Any] = next(r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions")
        return nag


def offline_environment(home: Path, variables: dict[str, str]) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CDK_", "JSII_"))}
    return {
        **inherited,
        "AWS_CONFIG_FILE": str(home / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CDK_DISABLE_VERSION_CHECK": "true",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
        **variables,
    }


def cli_synth(environment: Environment, root: Path) -> CliSynth:
    outdir = root / environment.name / "cdk.out"
    completed = subprocess.run(
        [
            *("npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices"),
            *("--app", f"{sys.executable} -m infra.app", "--output", str(outdir)),
            *(arg for value in environment.context for arg in ("-c", value)),
        ],
        cwd=ROOT,
        env=offline_environment(root / environment.name, environment.variables),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )
    template_path = outdir / f"{STACK_NAME}.template.json"
    lint = cfn_lint(template_path, environment.region) if template_path.exists() else None
    return CliSynth(environment, outdir, completed.returncode, completed.stdout + completed.stderr, lint)


def cfn_lint(template_path: Path, region: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # The template first: --regions takes one or more values and would swallow it.
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--format",
            "parseable",
            str(template_path),
            "--regions",
            region,
        ],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        check=False,
    )


@pytest.fixture(scope="module")
def synths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CliSynth]:
    root = tmp_path_factory.mktemp("cdk-cli")
    # Independent processes, each into its own --output folder (then cfn-lint on it): run them side by side.
    with ThreadPoolExecutor(max_workers=len(ENVIRONMENTS)) as pool:
        done = pool.map(lambda env: cli_synth(env, root), ENVIRONMENTS)
        return {synth.environment.name: synth for synth in done}


@pytest.fixture(params=[env.name for env in ENVIRONMENTS])
def synth(request: pytest.FixtureRequest, synths: dict[str, CliSynth]) -> CliSynth:
    return synths[request.param]


def test_the_cli_synthesizes_the_stack_for_the_environment_it_was_given(synth: CliSynth):
    assert synth.returncode == 0, synth.output
    assert "Synthesis finished with errors" not in synth.output
    manifest = json.loads((synth.outdir / "manifest.json").read_text())
    assert manifest["artifacts"][STACK_NAME]["environment"] == synth.environment.expected


def test_cdk_nag_reports_no_unacknowledged_finding(synth: CliSynth):
    nag = synth.nag_report()
    assert nag["violations"] == [], synth.output
    assert nag["conclusion"] == "success"
    for suppressed in nag["suppressedViolations"]:
        assert len(suppressed["reason"]) > 20, suppressed["ruleName"]
    acknowledged = len(nag["suppressedViolations"])
    print(f"{synth.environment.expected}: cdk-nag {nag['conclusion']}, {acknowledged} rules acknowledged")


def test_the_lifecycle_type_context_value_chooses_an_express_lifecycle(synths: dict[str, CliSynth]):
    def lifecycle_of(synth: CliSynth) -> dict[str, Any]:
        resources = json.loads(synth.template_path.read_text())["Resources"]
        [machine] = [
            r
            for k, r in resources.items()
            if k.startswith("WorkflowTaskLifecycleStateMachine") and r["Type"] == "AWS::StepFunctions::StateMachine"
        ]
        return dict(machine["Properties"])

    standard, express = lifecycle_of(synths["unset"]), lifecycle_of(synths["express"])
    print(f"default: {standard['StateMachineType']}, -c {CONTEXT_KEY}={EXPRESS}: {express['StateMachineType']}")
    assert (standard["StateMachineType"], express["StateMachineType"]) == ("STANDARD", "EXPRESS")
    # Its executions are watched in the console from CloudWatch Logs: every event logged
    assert express["LoggingConfiguration"]["Level"] == "ALL"


def test_the_environment_reaches_the_acknowledged_arns(synths: dict[str, CliSynth]):
    # Given the two environments with a region and an account, the execution ARNs carry them as literals
    for name in ("eu-west-1", "ap-southeast-2"):
        synth = synths[name]
        account, region = synth.environment.expected.removeprefix("aws://").split("/")
        assert f":states:{region}:{account}:execution:" in synth.template_path.read_text()


def test_cfn_lint_reports_no_errors(synth: CliSynth):
    result = synth.lint
    assert result is not None, f"no template was synthesized: {synth.output}"
    # cfn-lint's exit code is a bit mask: 2 = errors, 4 = warnings, 8 = informational; anything else (1 = it
    # crashed, 32 = bad arguments) means the template was not linted.
    errors = [line for line in result.stdout.splitlines() if ":E" in line]
    assert result.returncode & ~(4 | 8) == 0, result.stdout + result.stderr
    assert errors == [], result.stdout


def test_no_jsii_node_banner_in_the_cli_synth(synth: CliSynth):
    assert not [marker for marker in BANNER_MARKERS if marker in synth.output], synth.output
