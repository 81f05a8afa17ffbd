"""The CDK app: one stack, AwsSolutions checks from cdk-nag on every synth."""

import json
import os
import sys
from pathlib import Path

# Before aws_cdk: jsii starts its kernel with the pinned node (infra/node_runtime.py).
from infra import node_runtime  # noqa: F401

# isort: split
import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.nag import apply_suppressions
from infra.stack import TaskrailStack
from workflows import lifecycle_type as lifecycle_types

STACK_NAME = os.environ.get("TASKRAIL_STACK_NAME", "taskrail")


def build_app(outdir: str | None = None, *, lifecycle_type: str | None = None) -> cdk.App:
    # Path metadata names each resource after its construct: asl/ placeholders and the local stack use it.
    context = {"aws:cdk:enable-path-metadata": True}
    app = cdk.App(outdir=outdir, context=context) if outdir else cdk.App(context=context)
    # `cdk synth -c lifecycleType=EXPRESS` (or build_app(lifecycle_type=...)): STANDARD unless asked.
    chosen = lifecycle_types.parse(lifecycle_type or app.node.try_get_context(lifecycle_types.CONTEXT_KEY))
    stack = TaskrailStack(
        app,
        STACK_NAME,
        lifecycle_type=chosen,
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
    )
    apply_suppressions(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def nag_summary(assembly_directory: str) -> str:
    """One line per validation plugin: what `cdk synth` reports when every finding is acknowledged."""
    report = json.loads((Path(assembly_directory) / "validation-report.json").read_text())
    return "\n".join(
        f"{plugin['pluginName']}: {plugin['conclusion']}, {len(plugin['violations'])} unacknowledged, "
        f"{len(plugin.get('suppressedViolations', []))} acknowledged with a reason"
        for plugin in report["pluginReports"]
    )


if __name__ == "__main__":
    print(nag_summary(build_app().synth().directory), file=sys.stderr)
