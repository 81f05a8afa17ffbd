"""Validate hands Process the parameters as users write them (docs/TEST-STRENGTH.md, area lambdas).

Validate's output becomes Process's input through the workflow (ValidateParameters, then ProcessTask's work
order), and Process parses the parameters again with the same model: camelCase names only, nothing unknown.
"""

from __future__ import annotations

from fakes import InMemoryBlobStore, InMemoryTaskStore, a_task

from process_task.logic import process_task
from task_common.models import ProcessRequest, ValidateRequest
from validate_task.logic import validate_task

THRESHOLD = 200_000


def test_validated_csv_params_keep_their_camel_case_names_and_process_runs_on_them():
    # Given a csv.summary task whose params use a two-word name, as the API documents them
    task = a_task(type="csv.summary", params='{"csv": "n\\n1\\n2", "hasHeader": false}')
    tasks, blobs = InMemoryTaskStore(task), InMemoryBlobStore()

    # When validated
    validated = validate_task(
        ValidateRequest(task_id=task.task_id, attempt=1),
        tasks=tasks,
        blobs=blobs,
        claim_check_threshold_bytes=THRESHOLD,
    )

    # Then the params carry the names users write, defaults filled in
    assert validated.params == {"csv": "n\n1\n2", "delimiter": ",", "hasHeader": False}

    # And Process, given the work order the workflow builds from it, reads all three lines as rows (no header)
    request = ProcessRequest.model_validate(validated.to_work_order())
    processed = process_task(request, tasks=tasks, blobs=blobs, claim_check_threshold_bytes=THRESHOLD)
    assert processed.result is not None
    assert processed.result["rowCount"] == 3
