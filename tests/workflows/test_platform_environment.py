"""The in-process platform gives the process environment back as it found it: the handlers read os.environ, which
every function of the platform shares, so one template's settings must not reach the next platform or test.

Seen in CI at d211979: after an EXPRESS platform (STOP_EXECUTIONS=false, LIFECYCLE_MAX_EXECUTION_SECONDS=300),
the STANDARD reconciler tests settled RUNNING tasks by their claim's age and the cancel unit test skipped a
running execution as "not stoppable (EXPRESS)"; 4 failed, in an order pytest-randomly chose.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from taskrail.local.inprocess import in_process_platform

EXPRESS_ONLY = ("STOP_EXECUTIONS", "LIFECYCLE_MAX_EXECUTION_SECONDS")


def test_an_express_platform_leaves_no_setting_of_its_functions_behind(express_template_path: Path) -> None:
    before = {key: os.environ.get(key) for key in EXPRESS_ONLY}
    template = json.loads(express_template_path.read_text())

    with in_process_platform(template, cdk_out=express_template_path.parent, stack_name="taskrail"):
        during = {key: os.environ.get(key) for key in EXPRESS_ONLY}

    assert during == {"STOP_EXECUTIONS": "false", "LIFECYCLE_MAX_EXECUTION_SECONDS": "300"}
    assert {key: os.environ.get(key) for key in EXPRESS_ONLY} == before
