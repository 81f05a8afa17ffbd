"""The operator's functions (replay, redrive, the dead-letter queue, results, execution histories), over small
ports with boto3 adapters, tested with fakes as ``lambdas/`` is. Above :mod:`taskrail.client` (owner checks go
through the user API), below the CLI and the console."""

from taskrail.operator.dlq import DLQ_MESSAGE_FIELDS
from taskrail.operator.replay import ReplayOutcome
from taskrail.operator.service import Operator

__all__ = ["DLQ_MESSAGE_FIELDS", "Operator", "ReplayOutcome"]
