"""The CDK app: one stack, AwsSolutions checks from cdk-nag on every synth."""

import os

# Before aws_cdk: jsii starts its kernel with the pinned node (infra/node_runtime.py).
from infra import node_runtime  # noqa: F401

# isort: split
import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.nag import apply_suppressions
from infra.stack import TaskrailStack

STACK_NAME = os.environ.get("TASKRAIL_STACK_NAME", "taskrail")


def build_app(outdir: str | None = None) -> cdk.App:
    # Path metadata names each resource after its construct: asl/ placeholders and the local stack use it.
    context = {"aws:cdk:enable-path-metadata": True}
    app = cdk.App(outdir=outdir, context=context) if outdir else cdk.App(context=context)
    stack = TaskrailStack(
        app,
        STACK_NAME,
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")),
    )
    apply_suppressions(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
