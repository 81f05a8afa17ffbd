"""Logger, Tracer and Metrics, created once per process; the service name is POWERTOOLS_SERVICE_NAME."""

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from task_common.errors import EXPECTED_ERRORS

logger = Logger()
tracer = Tracer()
# Metrics refuses to flush without a namespace; a missing variable must not fail every invocation.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "taskrail"))

# Lambda counts every raised exception in its Errors metric, including the outcomes the workflow expects (a
# rejected or cancelled task, a transient failure it retries). This metric counts those, so an alarm on
# Errors minus ExpectedErrors pages only for the unexpected (infra/constructs/observability.py).
EXPECTED_ERRORS_METRIC = "ExpectedErrors"

Handler = TypeVar("Handler", bound=Callable[..., Any])


def counts_expected_errors(handler: Handler) -> Handler:
    """Place under ``@metrics.log_metrics`` (which flushes in ``finally``, so the count survives the raise)."""

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        try:
            return handler(event, context)
        except EXPECTED_ERRORS:
            metrics.add_metric(name=EXPECTED_ERRORS_METRIC, unit=MetricUnit.Count, value=1)
            raise

    return wrapper  # type: ignore[return-value]
