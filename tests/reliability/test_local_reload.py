"""`taskrail local up` follows the sources of a scratch copy of the project: an edited handler runs at the next
submission with the stack's state kept; a template change is refused with a message, and the stack keeps running."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from taskrail.local.accounts import user_client
from taskrail.local.state import StackInfo, local_client
from tests.local_up import LOCAL_CLI, scratch_project, start_local_up, stop_local_up

RELOAD_DEADLINE = 420  # a synth in a subprocess: seconds on an idle laptop, minutes on a busy 2-core runner
ECHO = Path("lambdas/task_types/diagnostic_echo.py")
ECHO_RESULT = 'return {"echo": params.payload}'
VALIDATE_TIMEOUT = '"validate_task.handler.handler",\n    Duration.seconds(30),'


@dataclass
class Running:
    project: Path
    info: StackInfo
    log: Path
    state: Path
    env: dict[str, str]

    @property
    def outcomes_file(self) -> Path:
        return self.project / ".taskrail" / "logs" / "reload.json"

    def outcomes(self) -> list[dict[str, Any]]:
        try:
            return list(json.loads(self.outcomes_file.read_text()))
        except (OSError, ValueError):
            return []

    def wait_for_outcome(self, seen: int, changed: Path) -> dict[str, Any]:
        """An outcome newer than the ``seen`` earlier ones that names ``changed`` (one edit may give several; the
        file lists the newest first)."""
        deadline = time.monotonic() + RELOAD_DEADLINE
        while True:
            outcomes = self.outcomes()
            found = [o for o in outcomes[: len(outcomes) - seen] if str(changed) in o.get("changed", [])]
            if found:
                return found[0]
            assert time.monotonic() < deadline, f"no reload outcome in time:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.5)

    def run_echo(self, payload: Any) -> tuple[str, dict[str, Any]]:
        client = user_client(self.info, "alice")
        task_id = client.submit("diagnostic.echo", {"payload": payload})["taskId"]
        assert client.wait([task_id], timeout=120)[task_id]["status"] == "SUCCEEDED"
        return task_id, self.result(task_id)

    def result(self, task_id: str) -> dict[str, Any]:
        s3 = local_client("s3", self.info.aws_endpoint_url)
        body = s3.get_object(Bucket=self.info.results_bucket, Key=f"tasks/{task_id}/result.json")["Body"].read()
        return dict(json.loads(body)["result"])


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    scratch = tmp_path_factory.mktemp("reload")
    project = scratch_project(scratch / "project")
    env = {**os.environ, "TASKRAIL_CDK_OUT": str(project / "cdk.out")}
    state, log_path = scratch / "local.json", scratch / "up.log"
    with log_path.open("w") as log:
        up = start_local_up(state, log, args=["--reload"], cwd=project, env=env)
        try:
            yield Running(project=project, info=StackInfo.load(state), log=log_path, state=state, env=env)
        finally:
            stop_local_up(up)


@pytest.mark.timeout(2 * RELOAD_DEADLINE + 120)  # two reloads, each a synth in a subprocess
def test_an_edited_handler_is_reloaded_and_then_a_template_change_is_refused(running: Running):
    # One test, in this order: once the template has changed, the stack refuses every later change (it keeps the
    # template it started with), so a code edit after it would be refused too (pytest-randomly reorders tests).
    the_handler_edit_runs_at_the_next_submission_and_the_state_is_kept(running)
    a_template_change_is_refused_with_a_message_and_the_stack_keeps_running(running)


def the_handler_edit_runs_at_the_next_submission_and_the_state_is_kept(running: Running) -> None:
    # Given a task that ran on the code the stack started with
    client = user_client(running.info, "alice")
    earlier, before = running.run_echo("before")
    assert before == {"echo": "before"}

    # When the task type's code is edited under the running stack
    module = running.project / ECHO
    seen = len(running.outcomes())
    module.write_text(module.read_text().replace(ECHO_RESULT, 'return {"echo": params.payload, "reloaded": True}'))
    outcome = running.wait_for_outcome(seen, ECHO)

    # Then the workers run the new code, and what the stack held before is still there
    print(outcome)
    assert outcome["outcome"] == "reloaded", outcome
    assert str(ECHO) in outcome["changed"]
    assert running.run_echo("after")[1] == {"echo": "after", "reloaded": True}
    assert client.get(earlier)["status"] == "SUCCEEDED"
    assert running.result(earlier) == {"echo": "before"}
    assert "reload reloaded: function code reloaded" in running.log.read_text()


def a_template_change_is_refused_with_a_message_and_the_stack_keeps_running(running: Running) -> None:
    # Given the stack after any earlier reload
    seen = len(running.outcomes())

    # When the infrastructure changes (the validate function's timeout)
    functions = running.project / "infra" / "constructs" / "functions.py"
    text = functions.read_text()
    assert VALIDATE_TIMEOUT in text
    functions.write_text(text.replace(VALIDATE_TIMEOUT, VALIDATE_TIMEOUT.replace("30", "31")))
    outcome = running.wait_for_outcome(seen, Path("infra/constructs/functions.py"))

    # Then it is refused, saying what changed and how to apply it, and the stack still serves tasks
    print(outcome["message"])
    assert outcome["outcome"] == "refused", outcome
    assert "ValidateTaskFunction" in outcome["message"] and "NOT applied" in outcome["message"]
    assert "Restart `taskrail local up`" in outcome["message"]
    assert "reload refused: the template changed" in running.log.read_text()
    status = subprocess.run(
        [*LOCAL_CLI, "status", "--local-state", str(running.state)],
        cwd=running.project, env=running.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    print(status.stdout)
    assert status.returncode == 0, status.stderr
    assert f"pid            {running.info.pid}" in status.stdout
    assert "refused: the template changed (FunctionsValidateTaskFunction" in status.stdout
    assert running.run_echo("still")[1] == {"echo": "still", "reloaded": True}  # the reloaded code, still running
