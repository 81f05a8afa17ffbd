"""Logger, Tracer and Metrics, created once per process; the service name is POWERTOOLS_SERVICE_NAME."""

import functools
import os
import time
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from task_common.contract import EXPECTED_ERRORS_METRIC
from task_common.errors import EXPECTED_ERRORS

Handler = TypeVar("Handler", bound=Callable[..., Any])
#: What X-Ray traces: the AWS SDK, the only library the functions call anything with. Powertools' default patches
#: every library of the X-Ray SDK's list that is importable (``patch_all``: sqlite3, requests, SQLAlchemy, httpx, …),
#: importing each one at init only to trace calls that no function makes.
TRACED_MODULES = ("botocore",)


class LazyTracer:
    """Powertools' ``Tracer``, created on the first traced call rather than at import.

    Creating a ``Tracer`` imports the X-Ray SDK (always, even when tracing is off) and patches the traced
    libraries; a function's init does neither (tests/unit/test_cold_start_imports.py). Decorating defers the same
    way: ``capture_lambda_handler`` and ``capture_method`` wrap the function with the real decorator on its first
    call, so each call is traced exactly as if the ``Tracer`` had decorated it at import. Anything else is the
    ``Tracer``'s own (``tracer.put_annotation``, ``tracer.provider``, …).
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._tracer: Tracer | None = None

    @property
    def real(self) -> Tracer:
        if self._tracer is None:
            self._tracer = Tracer(**self._options)
        return self._tracer

    def capture_lambda_handler(self, handler: Handler) -> Handler:
        return self._on_first_call(handler, lambda: self.real.capture_lambda_handler(handler))

    def capture_method(self, method: Handler) -> Handler:
        return self._on_first_call(method, lambda: self.real.capture_method(method))

    @staticmethod
    def _on_first_call(function: Handler, decorate: Callable[[], Callable[..., Any]]) -> Handler:
        traced: list[Callable[..., Any]] = []

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not traced:
                traced.append(decorate())
            return traced[0](*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not the Tracer's: an attribute of this object not set yet (copy, pickle)
            raise AttributeError(name)
        return getattr(self.real, name)


logger = Logger()
tracer = LazyTracer(patch_modules=TRACED_MODULES)
# Metrics refuses to flush without a namespace; a missing variable must not fail every invocation.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "taskrail"))
# A try that raised before adding a metric, or an idempotent replay, flushes none: expected here, so Powertools'
# "No application metrics to publish" warning is noise in every such log. Its documented switch ("Suppressing
# warning messages on empty metrics"): a warnings filter on the message.
warnings.filterwarnings("ignore", "No application metrics to publish*")

# Lambda counts every raised exception in its Errors metric, including the outcomes the workflow expects (a
# rejected or cancelled task, a transient failure it retries). EXPECTED_ERRORS_METRIC counts those, so an alarm
# on Errors minus ExpectedErrors pages only for the unexpected (infra/constructs/observability.py).
__all__ = ["EXPECTED_ERRORS_METRIC", "counts_expected_errors", "logger", "logs_each_try", "metrics", "tracer"]
#: What a try's first log line says of it, when the event has it.
TRY_FIELDS = ("type", "attempt", "redriveCount", "retry")


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


def logs_each_try(handler: Handler) -> Handler:
    """One log line when a try starts and one when it ends (succeeded, or failed with the error's type and message).

    Place under ``@logger.inject_lambda_context(correlation_id_path="taskId")``: each line then carries the task id
    as ``correlation_id``, so `taskrail logs <taskId>` (and a Logs Insights query on AWS) finds every try of a
    task, in every function, including the ones that failed without logging anything themselves.
    """

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any) -> Any:
        fields = {key: event[key] for key in TRY_FIELDS if isinstance(event, dict) and key in event}
        logger.info("try started", extra=fields)
        try:
            result = handler(event, context)
        except EXPECTED_ERRORS as error:
            logger.warning("try failed", extra={"error": type(error).__name__, "cause": str(error)[:1000]})
            raise
        except Exception as error:
            logger.exception("try failed unexpectedly", extra={"error": type(error).__name__})
            raise
        logger.info("try succeeded")
        return result

    return wrapper  # type: ignore[return-value]
