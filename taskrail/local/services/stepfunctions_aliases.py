"""AWS Step Functions versions and aliases where moto 5.2.5 stops short.

moto keeps versions (``CreateStateMachine``/``UpdateStateMachine`` with ``publish``) and aliases
(``CreateStateMachineAlias``, ``UpdateStateMachineAlias``, ``DescribeStateMachineAlias``), but it has no
``PublishStateMachineVersion``, cannot start an execution through an alias (``StartExecution`` on
``stateMachine:M:live`` is ``StateMachineDoesNotExist``), and starts a version's execution where DescribeExecution
never finds it. AWS, which this module follows:

- "StartExecution" (API Reference): a qualified ARN names a version (``stateMachine:M:3``) or an alias
  (``stateMachine:M:PROD``), "the request starts execution for that version or alias"; with an alias, the
  execution "is associated with that alias and the state machine version used for that execution" ("Associating
  executions with a version or alias"). An alias's routing configuration holds one or two versions with weights
  that add up to 100: each start goes to one of them with that probability ("Alias routing", Developer Guide).
- The execution's ARN stays ``execution:M:name`` whatever started it, and DescribeExecution / ListExecutions show
  ``stateMachineArn`` unqualified plus ``stateMachineAliasArn`` (alias starts) and ``stateMachineVersionArn``
  (alias or version starts): AWS's recorded responses in LocalStack's ``test_sfn_api_aliasing.snapshot.json``
  (``describe_execution_response_through_alias``, ``..._through_version_arn``, ``list_executions_response``).
  Names stay unique per state machine across its versions and aliases (one executions list).
- "PublishStateMachineVersion" (API Reference): publishes the state machine's current revision as a new version
  and returns ``stateMachineVersionArn`` and ``creationDate``; publishing a revision that the latest version
  already holds returns that version instead of a duplicate.

Locally, :func:`starting` wraps every StartExecution (``stepfunctions_api``): it resolves the ARN, and while the
start runs (moto snapshots the definition synchronously) the state machine carries the chosen version's
definition, under one lock that every start takes. :func:`seed_routing` makes the weighted choice repeatable in
tests.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import ResourceNotFound, StateMachineDoesNotExist
from moto.stepfunctions.models import StateMachine, StateMachineVersion
from moto.stepfunctions.responses import StepFunctionResponse

from taskrail.local.services.patching import Check, Patch, Source, original

__all__ = [
    "PATCHES",
    "StartTarget",
    "execution_fields",
    "install_aliases",
    "resolve_start",
    "seed_routing",
    "starting",
    "uninstall_aliases",
]

_lock = threading.RLock()
_routing = random.Random()
_UNQUALIFIED_PARTS: Final = 7  # arn:partition:states:region:account:stateMachine:name


def seed_routing(seed: int | None) -> None:
    """The alias's weighted choice, repeatable (tests); ``None`` gives it back to the system's randomness."""
    _routing.seed(seed)


@dataclass(frozen=True)
class StartTarget:
    """What a StartExecution ARN resolves to: the unqualified state machine, the version it runs (None: the latest
    revision, an unqualified start) and the alias it went through."""

    state_machine_arn: str
    version: StateMachineVersion | None = None
    alias_arn: str | None = None


def _version(machine: StateMachine, version_arn: str) -> StateMachineVersion:
    number = version_arn.rsplit(":", 1)[1]
    version = machine.versions.get(int(number)) if number.isdigit() else None
    if version is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{version_arn}'")
    return version


def resolve_start(backend: Any, arn: str) -> StartTarget:
    parts = str(arn).split(":")
    if len(parts) <= _UNQUALIFIED_PARTS:
        return StartTarget(arn)
    base, qualifier = ":".join(parts[:_UNQUALIFIED_PARTS]), ":".join(parts[_UNQUALIFIED_PARTS:])
    machine = next((m for m in backend.state_machines if m.arn == base), None)
    if machine is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{arn}'")
    if qualifier.isdigit():
        return StartTarget(base, _version(machine, arn))
    alias = machine.aliases.get(qualifier)
    if alias is None:
        raise ResourceNotFound(f"State Machine Alias Does Not Exist: '{arn}'")
    routes = alias.routing_configuration
    chosen = _routing.choices(routes, weights=[float(route["weight"]) for route in routes])[0]
    return StartTarget(base, _version(machine, chosen["stateMachineVersionArn"]), alias.arn)


@contextmanager
def starting(backend: Any, arn: str) -> Iterator[StartTarget]:
    """Resolve ``arn`` and hold the state machine at the chosen version's definition while the caller starts the
    execution on ``target.state_machine_arn``; then :func:`record` the execution."""
    target = resolve_start(backend, arn)
    with _lock:
        if target.version is None:
            yield target
            return
        machine = backend.describe_state_machine(target.state_machine_arn)
        latest = machine.definition, machine.roleArn
        machine.definition, machine.roleArn = target.version.definition, target.version.roleArn
        try:
            yield target
        finally:
            machine.definition, machine.roleArn = latest


def record(execution: Any, target: StartTarget) -> None:
    """Associate a new execution with its version and alias (an idempotent start returns the first one's)."""
    if target.version is None or hasattr(execution, "state_machine_version_arn"):
        return
    execution.state_machine_version_arn = target.version.arn
    execution.state_machine_alias_arn = target.alias_arn


def execution_fields(execution: Any) -> dict[str, str]:
    """DescribeExecution's and ListExecutions' ``stateMachineVersionArn`` / ``stateMachineAliasArn``, when set."""
    fields = {}
    if getattr(execution, "state_machine_version_arn", None):
        fields["stateMachineVersionArn"] = execution.state_machine_version_arn
    if getattr(execution, "state_machine_alias_arn", None):
        fields["stateMachineAliasArn"] = execution.state_machine_alias_arn
    return fields


def _publish_state_machine_version(self: StepFunctionResponse) -> ActionResult:
    machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
    latest = machine.latest_version
    if latest is None or (latest.definition, latest.roleArn) != (machine.definition, machine.roleArn):
        machine.publish(description=self._get_param("description"))
        latest = machine.latest_version
    assert latest is not None
    return ActionResult({"creationDate": latest.creation_date, "stateMachineVersionArn": latest.arn})


def install_aliases() -> None:
    with _lock:
        if not hasattr(StepFunctionResponse, "publish_state_machine_version"):
            StepFunctionResponse.publish_state_machine_version = _publish_state_machine_version  # type: ignore[attr-defined]


def uninstall_aliases() -> None:
    with _lock:
        if vars(StepFunctionResponse).get("publish_state_machine_version") is _publish_state_machine_version:
            del StepFunctionResponse.publish_state_machine_version  # type: ignore[attr-defined]


ALIASES: Final = Patch(
    "state machine versions and aliases (PublishStateMachineVersion, StartExecution through an alias)",
    depends=(
        Source(
            "moto.stepfunctions.models.StateMachine.publish",
            lambda: StateMachine.publish,
            ("self.versions[new_version_number] = new_version", "self.latest_version = new_version"),
        ),
        Source(
            "moto.stepfunctions.models.StateMachineAlias.__init__",
            lambda: __import__("moto.stepfunctions.models", fromlist=["x"]).StateMachineAlias.__init__,
            ('self.arn = f"{statemachine_arn}:{name}"', "self.routing_configuration = routing_configuration"),
        ),
        Source(
            "moto.stepfunctions.parser.models.StepFunctionsParserBackend.start_execution (snapshot)",
            lambda: original(
                __import__("moto.stepfunctions.parser.models", fromlist=["x"]).StepFunctionsParserBackend,
                "start_execution",
            ),
            ("state_machine = self.describe_state_machine(state_machine_arn)", "copy.deepcopy(", "execution.start()"),
        ),
        Check(
            "moto.stepfunctions.responses.StepFunctionResponse.publish_state_machine_version",
            lambda: (
                vars(StepFunctionResponse).get("publish_state_machine_version")
                in (None, _publish_state_machine_version)
            ),
            "is ours or missing (moto 5.2.5 has none; if moto has it now, drop ours)",
        ),
    ),
    install=install_aliases,
    uninstall=uninstall_aliases,
)

PATCHES: Final = (ALIASES,)
