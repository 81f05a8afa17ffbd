"""AWS Step Functions errors that Retry and Catch cannot match (moto's ``States.ALL`` matches every error).

AWS ("Handling errors in Step Functions workflows", Step Functions Developer Guide,
https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html): "The States.ALL error type
[...] can't catch the States.DataLimitExceeded terminal error or Runtime error types"; ``States.DataLimitExceeded``
is "A terminal error that can't be caught by the States.ALL error type"; ``States.Runtime``: "An execution failed
due to some exception that it couldn't process [...] Errors of this type aren't retriable and will always cause
the execution to fail. A retry or catch on States.ALL won't catch States.Runtime errors."

Locally :func:`install_uncatchable_errors` wraps ``ErrorEqualsDecl._eval_body`` (the one check every Retrier and
Catcher makes): ``States.Runtime`` matches no ErrorEquals, and ``States.DataLimitExceeded`` is not matched by
``States.ALL`` (only by its own name). The execution then fails with that error, as on AWS.
"""

from __future__ import annotations

from typing import Any, Final

from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.eval.environment import Environment

from taskrail.local.services.patching import Check, Patch, Source, is_patched, original, patch, unpatch

__all__ = ["NEVER_MATCHED", "PATCHES", "install_uncatchable_errors", "uninstall_uncatchable_errors"]

#: matched by no Retrier or Catcher
NEVER_MATCHED: Final = frozenset({"States.Runtime"})
#: not matched by States.ALL (a Retrier/Catcher naming it still matches)
NOT_MATCHED_BY_ALL: Final = frozenset({"States.DataLimitExceeded"})
_ALL: Final = "States.ALL"


def _name_of(error_name: Any) -> str:
    return str(getattr(error_name, "error_name", error_name))


def _error_equals(self: ErrorEqualsDecl, env: Environment) -> None:
    error_name = env.stack[-1]
    name = _name_of(error_name)
    listed = {_name_of(n) for n in self.error_names}
    if name in NEVER_MATCHED or (name in NOT_MATCHED_BY_ALL and name not in listed):
        env.stack.pop()
        env.stack.append(False)
        return
    original(ErrorEqualsDecl, "_eval_body")(self, env)


def install_uncatchable_errors() -> None:
    if not is_patched(ErrorEqualsDecl, "_eval_body"):
        patch(ErrorEqualsDecl, "_eval_body", _error_equals)


def uninstall_uncatchable_errors() -> None:
    if is_patched(ErrorEqualsDecl, "_eval_body"):
        unpatch(ErrorEqualsDecl, "_eval_body")


def _states_all_is_a_string_name() -> bool:
    return _name_of(ErrorEqualsDecl._STATE_ALL_ERROR) == _ALL


UNCATCHABLE_ERRORS: Final = Patch(
    "States.Runtime and States.DataLimitExceeded are not caught by States.ALL",
    depends=(
        Source(
            "moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl.ErrorEqualsDecl._eval_body",
            lambda: original(ErrorEqualsDecl, "_eval_body"),
            ("error_name: ErrorName = env.stack.pop()", "self.error_names", "env.stack.append(res)"),
        ),
        Check(
            "moto.stepfunctions.parser.asl.component.common.error_name.error_name.ErrorName.error_name",
            _states_all_is_a_string_name,
            "ErrorName.error_name is no longer the error's name string",
        ),
    ),
    install=install_uncatchable_errors,
    uninstall=uninstall_uncatchable_errors,
)

PATCHES: Final = (UNCATCHABLE_ERRORS,)
