"""Logger, Tracer and Metrics, created once per process; the service name is POWERTOOLS_SERVICE_NAME."""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
# Metrics refuses to flush without a namespace; a missing variable must not fail every invocation.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "taskrail"))
