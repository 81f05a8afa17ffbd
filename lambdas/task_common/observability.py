"""Logger, Tracer and Metrics, created once per process; the service name is POWERTOOLS_SERVICE_NAME."""

import functools
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from task_common.contract import EXPECTED_ERRORS_METRIC
from task_common.errors import EXPECTED_ERRORS

logger = Logger()
tracer = Tracer()
# Metrics refuses to flush without a namespace; a missing variable must not fail every invocation.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "taskrail"))

# Lambda counts every raised exception in its Errors metric, including the outcomes the workflow expects (a
# rejected or cancelled task, a transient failure it retries). EXPECTED_ERRORS_METRIC counts those, so an alarm
# on Errors minus ExpectedErrors pages only for the unexpected (infra/constructs/observability.py).
__all__ = ["EXPECTED_ERRORS_METRIC", "counts_expected_errors", "logger", "metrics", "tracer"]
Handler = TypeVar("Handler", bound=Callable[..., Any])


def counts_expected_errors(handler: Handler) -> Handler:
    """Place under ``@metrics.log_metrics`` (which flushes in ``finally``, so the count survives the raise)."""

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        # Lambda stamps its Errors metric with the time the function was invoked, not when the error occurred
        # ("Types of metrics for Lambda functions"); an EMF metric is stamped when it is flushed. The count is
        # stamped with the invocation's time too, or an error raised after a minute boundary (ProcessTask runs
        # up to 15 min) would be +1 in Errors - ExpectedErrors in one minute and -1 in a later one: a false page.
        invoked_at_ms = int(time.time() * 1000)
        try:
            return handler(event, context)
        except EXPECTED_ERRORS:
            with single_metric(
                name=EXPECTED_ERRORS_METRIC, unit=MetricUnit.Count, value=1, namespace=metrics.namespace
            ) as metric:
                metric.set_timestamp(invoked_at_ms)
                if metrics.service:
                    metric.add_dimension(name="service", value=str(metrics.service))
            raise

    return wrapper  # type: ignore[return-value]
