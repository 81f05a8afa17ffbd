"""Retry policy per error class, named once and applied by the workflows.

Every policy uses FULL jitter and a MaxDelaySeconds cap so that a burst of failing tasks does not retry in
lock-step. The names of task errors are the class names in ``lambdas/task_common/errors.py``.
"""

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_stepfunctions as sfn

from task_common.errors import TaskCancelled

VALIDATION_FAILED = "ValidationFailed"
TRANSIENT_TASK_ERROR = "TransientTaskError"
PERMANENT_TASK_ERROR = "PermanentTaskError"
TASK_CANCELLED = TaskCancelled.__name__
CONDITION_FAILED = "DynamoDB.ConditionalCheckFailedException"

LAMBDA_SERVICE_ERRORS = [
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# Step Functions names an optimized integration's error after the SDK's exception class; DynamoDB's API model
# calls two of these codes RequestLimitExceeded and InternalServerError, and the Java SDK's classes add
# "Exception". Neither spelling is documented for the integration, and a name that never occurs costs nothing,
# so both are listed (docs/AWS-REVIEW.md, Step Functions).
DYNAMODB_THROTTLING_ERRORS = [
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.ThrottlingException",
    "DynamoDB.RequestLimitExceeded",
    "DynamoDB.RequestLimitExceededException",
    "DynamoDB.InternalServerError",
    "DynamoDB.InternalServerErrorException",
]
S3_SERVICE_ERRORS = ["S3.S3Exception", "S3.SdkClientException"]


@dataclass(frozen=True)
class RetryPolicy:
    errors: list[str]
    interval_seconds: int
    max_attempts: int
    backoff_rate: float = 2.0
    max_delay_seconds: int = 60
    jitter: bool = True

    def apply_to(self, state: sfn.TaskStateBase) -> None:
        state.add_retry(
            errors=self.errors,
            interval=Duration.seconds(self.interval_seconds),
            max_attempts=self.max_attempts,
            backoff_rate=self.backoff_rate,
            max_delay=Duration.seconds(self.max_delay_seconds),
            jitter_strategy=sfn.JitterType.FULL if self.jitter else sfn.JitterType.NONE,
        )


# A task error that may pass on its own, a timed-out or crashed try (each retry is a new idempotency key: see
# process_task/handler.py), or a duplicate invocation still in progress: a few attempts, growing delays.
TRANSIENT = RetryPolicy(
    errors=[
        TRANSIENT_TASK_ERROR,
        "States.Timeout",
        # AWS reports a function timeout or out-of-memory as Lambda.Unknown ("Handle Lambda service exceptions",
        # Step Functions Developer Guide); the local Runtime API names a timeout Sandbox.Timedout, as Lambda's
        # own payload does.
        "Lambda.Unknown",
        "Sandbox.Timedout",
        "Runtime.ExitError",
        "IdempotencyAlreadyInProgressError",
    ],
    interval_seconds=1,
    max_attempts=4,
    max_delay_seconds=30,
)
# Lambda's own errors and throttling: the classic service-error schedule, capped.
LAMBDA_SERVICE = RetryPolicy(errors=LAMBDA_SERVICE_ERRORS, interval_seconds=2, max_attempts=6)
# Throttling of the direct service integrations: short and quick.
DYNAMODB_THROTTLING = RetryPolicy(errors=DYNAMODB_THROTTLING_ERRORS, interval_seconds=1, max_attempts=5)
S3_SERVICE = RetryPolicy(errors=S3_SERVICE_ERRORS, interval_seconds=1, max_attempts=4)
# The reconciler's run is idempotent and repeats every few minutes anyway: any failure is retried whole,
# twice, and then fails the execution (alarmed). States.TaskFailed comes after LAMBDA_SERVICE in the Retry
# list, so Lambda's own errors keep their schedule.
RECONCILER_RUN = RetryPolicy(
    errors=["States.TaskFailed", "States.Timeout"], interval_seconds=5, max_attempts=2, max_delay_seconds=30
)
