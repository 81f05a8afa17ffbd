"""Validate refuses a task type whose declared maximum duration, over ProcessTask's tries, exceeds what the
lifecycle leaves for processing (EXPRESS: its executions end after 5 minutes); REJECTED with the reason."""

from __future__ import annotations

import pytest
from fakes import InMemoryBlobStore, InMemoryTaskStore, a_task

from task_common.errors import ValidationFailed
from task_common.models import ValidateRequest
from task_types import get_task_type
from task_types.base import LAMBDA_MAX_SECONDS, TaskType
from validate_task.limits import LifecycleLimits
from validate_task.logic import validate_task

EXPRESS = LifecycleLimits.from_environ(
    {
        "LIFECYCLE_TYPE": "EXPRESS",
        "LIFECYCLE_TIME_LIMIT_SECONDS": "300",
        "PROCESS_TRIES": "5",
        "PROCESS_TIME_BUDGET_SECONDS": "255",
    }
)


def validate(task_type: str, limits: LifecycleLimits | None) -> object:
    return validate_task(
        ValidateRequest(task_id="task-1", attempt=1),
        tasks=InMemoryTaskStore(a_task(type=task_type, params='{"seconds": 1}')),
        blobs=InMemoryBlobStore(),
        claim_check_threshold_bytes=200_000,
        limits=limits,
    )


def test_a_type_whose_tries_exceed_the_express_budget_is_refused_with_the_reason():
    with pytest.raises(ValidationFailed) as refused:
        validate("diagnostic.sleep", EXPRESS)
    print(refused.value)
    assert str(refused.value) == (
        "task type diagnostic.sleep may run 840 s a try, 4200 s over its 5 tries, more than the 255 s this EXPRESS "
        "lifecycle leaves for processing (its executions end after 300 s); run it on a STANDARD lifecycle"
    )


def test_a_type_whose_tries_fit_passes_and_without_limits_nothing_is_refused():
    assert EXPRESS.refusal(get_task_type("text.stats")) is None  # 30 s x 5 = 150 s
    assert EXPRESS.refusal(get_task_type("csv.summary")) is None  # 45 s x 5 = 225 s
    assert validate("diagnostic.sleep", None) is not None
    assert validate("diagnostic.sleep", LifecycleLimits.from_environ({})) is not None


def test_the_budget_is_inclusive_and_an_undeclared_type_may_take_lambdas_longest_timeout():
    exactly = TaskType(name="x.fits", params_model=get_task_type("text.stats").params_model, run=lambda p, c: {},
                       max_duration_seconds=51)  # fmt: skip
    assert EXPRESS.refusal(exactly) is None  # 51 x 5 = 255
    undeclared = TaskType(name="x.long", params_model=exactly.params_model, run=exactly.run)
    assert undeclared.max_duration_seconds == LAMBDA_MAX_SECONDS == 900
    assert EXPRESS.refusal(undeclared) is not None
