"""The Node.js that runs jsii (aws_cdk's JavaScript kernel): the one pinned in package.json, never the machine's.

Import this module before anything imports ``aws_cdk``. The touch point, checked by tests/infra/test_node_runtime.py:
jsii 1.142.0 starts its kernel when the first assembly loads (``import aws_cdk``), running
``os.environ.get("JSII_NODE", "node")`` (``jsii/_kernel/providers/process.py``, ``ProcessProvider.start``). The
machine's ``node`` may be one jsii no longer supports (Node 20: a banner on stderr at every start); ``make setup``
installs the npm ``node`` package pinned in package.json (``npm ci``), whose binary is ``node_modules/.bin/node``.
"""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_BIN = ROOT / "node_modules" / ".bin" / "node"
PINNED_NODE_VERSION: str = json.loads((ROOT / "package.json").read_text())["devDependencies"]["node"]


class PinnedNodeUnavailable(RuntimeError):
    pass


def use_pinned_node() -> Path:
    """Points jsii at the pinned node; refuses when it is missing or when aws_cdk was imported first."""
    if not os.access(NODE_BIN, os.X_OK):
        raise PinnedNodeUnavailable(
            f"{NODE_BIN} is missing: run `make setup` (npm ci installs Node {PINNED_NODE_VERSION})"
        )
    if "aws_cdk" in sys.modules and os.environ.get("JSII_NODE") != str(NODE_BIN):
        raise PinnedNodeUnavailable("aws_cdk was imported before infra.node_runtime: jsii already chose its node")
    os.environ["JSII_NODE"] = str(NODE_BIN)
    return NODE_BIN


use_pinned_node()
