"""The lifecycle's workflow type, chosen at deploy time: ``cdk deploy -c lifecycleType=EXPRESS`` (STANDARD unless
asked), and what each type allows one execution ("Standard vs. Express Workflows", Step Functions Developer Guide:
an Express execution runs at most 5 minutes, at least once, and cannot be redriven)."""

from typing import Final

CONTEXT_KEY: Final = "lifecycleType"
STANDARD: Final = "STANDARD"
EXPRESS: Final = "EXPRESS"
LIFECYCLE_TYPES: Final = (STANDARD, EXPRESS)
EXPRESS_MAX_EXECUTION_SECONDS: Final = 300


def parse(value: object) -> str:
    """A context value (any case) as a lifecycle type; unset is STANDARD; anything else is an error."""
    chosen = str(value or STANDARD).upper()
    if chosen not in LIFECYCLE_TYPES:
        raise ValueError(f"-c {CONTEXT_KEY}={value}: expected one of {', '.join(LIFECYCLE_TYPES)}")
    return chosen
