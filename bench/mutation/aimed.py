"""The tests aimed at an asl mutant's state: what ``make mutation`` (``--areas asl``) runs each mutant against.

    python -m bench.mutation --areas asl --budget 20 --seed 1

Running all of ``tests/workflows`` per mutant took 15-40 min per surviving mutant on a loaded 2-core machine. Each
mutant runs only the rows of the error-path tables for its state (``-k <State>``), and for a condition or
result-path edit the workflow tests that reach the condition; a validation edit also runs the lifecycle-type
tables. A mutant these tests kill is killed by the area (they are part of it); each kill is shown to pass without
the mutant (the killing test run alone on the unmutated definitions, bench/mutation/asl.py). One that survives
them is a survivor of the run; ``--recheck --tests ...`` runs it against more of the area.
"""

from __future__ import annotations

import re

WORKFLOWS = "tests/workflows"
IDENT = re.compile(r"^(?P<workflow>[a-z_.]+)/(?P<state>[A-Za-z]+)")


def aimed(ident: str) -> tuple[str, ...]:
    """The pytest arguments aimed at the mutant's state."""
    match = IDENT.match(ident)
    if match is None:
        return (WORKFLOWS,)
    workflow, state = match["workflow"], match["state"]
    behaviour = ": flip-condition" in ident or ": drop-condition" in ident or ": result-path" in ident
    if workflow == "task_lifecycle.express":
        rows = "recording" if state == "RecordTaskFailed" else state
        timeouts = (f"{WORKFLOWS}/test_state_timeouts_express.py",) if state == "ProcessTask" else ()
        files = (f"{WORKFLOWS}/test_error_paths_express.py", *timeouts, f"{WORKFLOWS}/test_lifecycle_types.py")
        return (*files, "-k", f"{rows} or timeouts or lifecycle_types")
    if workflow == "task_lifecycle":
        extra = (f"{WORKFLOWS}/test_cancellation.py", f"{WORKFLOWS}/test_task_lifecycle.py") if behaviour else ()
        selector = f"{state} or cancel or lifecycle" if behaviour else state
        if state.startswith("Validate"):  # the rejection of bad parameters, per lifecycle type
            extra, selector = (*extra, f"{WORKFLOWS}/test_lifecycle_types.py"), f"{selector} or lifecycle_types"
        return (f"{WORKFLOWS}/test_error_paths.py", *extra, "-k", selector)
    if workflow == "reconciler":
        return (f"{WORKFLOWS}/test_state_timeouts.py", f"{WORKFLOWS}/test_reconciler.py")
    if workflow == "failure_recorder":
        return (f"{WORKFLOWS}/test_error_paths_recorder.py", f"{WORKFLOWS}/test_failure_path.py")
    return (WORKFLOWS,)
