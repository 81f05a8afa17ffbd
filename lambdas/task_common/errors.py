"""Error types the workflow's Retry and Catch match by class name.

Lambda reports an unhandled exception to Step Functions with ``Error`` set to the exception's class name,
so renaming one of these classes is a breaking change to ``workflows/task_lifecycle.py``
(``tests/unit/test_errors.py`` pins the names).
"""


class TaskError(Exception):
    """Base class of the errors a task handler raises on purpose."""


class ValidationFailed(TaskError):
    """The task's type or parameters are invalid: the task is REJECTED, never retried."""


class TransientTaskError(TaskError):
    """A failure that may pass: retried with backoff and jitter, then FAILED to the dead-letter queue."""


class PermanentTaskError(TaskError):
    """A failure that will not pass on its own: FAILED to the dead-letter queue without retries."""


class TaskCancelled(TaskError):
    """The task was cancelled while it ran: the workflow ends quietly and the status stays CANCELLED."""


class ReconciliationIncomplete(Exception):
    """Some tasks could not be reconciled in this run; the others were. The run is safe to repeat."""


class DeliveryFailed(Exception):
    """An outcome could not be delivered (a refused event entry): the pipe retries the record."""


EXPECTED_ERRORS = (ValidationFailed, TransientTaskError, PermanentTaskError, TaskCancelled)
ERROR_NAMES = {cls.__name__ for cls in EXPECTED_ERRORS}
