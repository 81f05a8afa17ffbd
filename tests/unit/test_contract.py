"""The task contract: importable anywhere without third-party packages, and what the generated workflow does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from task_common import contract
from task_common.models import TaskRecord, TaskStatus

ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE_ASL = ROOT / "asl" / "task_lifecycle.asl.json"
THIRD_PARTY = ("pydantic", "boto3", "botocore", "aws_cdk", "jsii", "moto", "aws_lambda_powertools")


def test_the_contract_imports_from_outside_the_repository_with_the_standard_library_only(tmp_path: Path):
    # Given a fresh interpreter in another folder, with no test path settings (as infra, taskrail and bench run)
    probe = (
        "import json, sys; import task_common.contract as c; "
        "print(json.dumps({'file': c.__file__, 'modules': sorted(m.split('.')[0] for m in sys.modules)}))"
    )

    # When it imports the contract
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PATH": ""}, capture_output=True, text=True, check=True
    )

    # Then it is the Lambda code's own file (the installed package maps task_common to a checkout's
    # lambdas/task_common: this one's, or the one the virtualenv was installed from) and it pulled in no
    # third-party package
    loaded = json.loads(result.stdout)
    assert Path(loaded["file"]).parts[-3:] == ("lambdas", "task_common", "contract.py")
    assert not set(THIRD_PARTY) & set(loaded["modules"])


def test_the_models_validate_against_the_contracts_statuses():
    assert TaskStatus is contract.Status
    assert contract.ALL_STATUSES == ("QUEUED", "RUNNING", "SUCCEEDED", "REJECTED", "FAILED", "CANCELLED")
    assert {"SUCCEEDED", "REJECTED", "FAILED", "CANCELLED"} == contract.TERMINAL_STATUSES
    assert {"QUEUED", "RUNNING"} == contract.CANCELLABLE_STATUSES
    record = TaskRecord.model_validate({"taskId": "t", "userId": "u", "type": "text.stats", "status": "CANCELLED"})
    assert record.status == contract.Status.CANCELLED
    with pytest.raises(ValueError, match="status"):
        TaskRecord.model_validate({"taskId": "t", "userId": "u", "type": "text.stats", "status": "DONE"})


@pytest.mark.parametrize("task_id", ["t-1", "x" * 77, "x" * 78, "k" * 200], ids=["short", "fits", "one-over", "long"])
def test_replay_and_reconciler_names_differ_only_in_their_suffix_and_fit_the_limit(task_id: str):
    replay = contract.replay_execution_name(task_id, 3)
    reconciler = contract.reconciler_execution_name(task_id, 3)

    assert replay.removesuffix("-r3") == reconciler.removesuffix("-q3")
    assert replay.endswith("-r3") and reconciler.endswith("-q3")
    assert len(replay) <= contract.MAX_EXECUTION_NAME and len(reconciler) <= contract.MAX_EXECUTION_NAME
    # the id itself when it fits, else the same hash of it every time
    fits = len(f"{task_id}-r3") <= contract.MAX_EXECUTION_NAME
    assert (replay == f"{task_id}-r3") is fits
    assert replay == contract.replay_execution_name(task_id, 3)


def test_two_long_ids_get_two_names():
    first, second = "k" * 199 + "a", "k" * 199 + "b"

    assert contract.reconciler_execution_name(first, 0) != contract.reconciler_execution_name(second, 0)


def test_keys_of_a_task_are_under_its_prefix():
    assert contract.result_key("t-1") == "tasks/t-1/result.json" == contract.RESULT_KEY_FORMAT.format("t-1")
    for key in (contract.result_key("t-1"), contract.input_key("t-1"), contract.result_body_key("t-1")):
        assert key.startswith(contract.task_prefix("t-1"))
    assert contract.user_prefix("u-1") == "users/u-1/"


def lifecycle_states() -> dict[str, Any]:
    return json.loads(LIFECYCLE_ASL.read_text())["States"]


def test_the_lifecycles_end_states_are_the_contracts():
    ends = {name for name, state in lifecycle_states().items() if state["Type"] in ("Succeed", "Fail")}

    assert ends == {state.value for state in contract.EndState}
    assert {"TaskRejected"} == contract.CATCH_PATH_END_STATES
    assert contract.CATCH_PATH_END_STATES.issubset(ends)


def test_the_outbox_publishes_one_detail_type_per_outcome_from_the_contracts_source():
    # Outcome events leave from the table (lambdas/task_changes/outbox.py), no longer from a workflow state
    from task_changes.outbox import Outcome, deliveries

    assert not [s for s in lifecycle_states().values() if s.get("Resource", "").endswith(":events:putEvents")]
    published = {}
    for status in contract.OUTCOME_DETAIL_TYPE:
        outcome = Outcome("t-1", status, 1, 0, "arn:x", "E", "c", "s3://b/k")
        (event,) = [d for d in deliveries(outcome) if d.kind == "event"]
        published[json.loads(event.body)["outcome"]] = event.detail_type
        assert event.as_dict()["source"] == contract.EVENT_SOURCE
    assert published == contract.OUTCOME_DETAIL_TYPE
