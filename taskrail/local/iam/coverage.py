"""Which of the template's grants a local run exercised, action by action, and why each one it did not is kept.

A grant is one action pattern of one Allow statement (``kms:GenerateDataKey*`` of the topic key's policy, say). It
is *exercised* when an allowed call was decided by that statement with an action the pattern matches. Usage is
noted against the statement's content (policy, actions, resources), not its index, so a test that loads a copy of
the template without one grant (tests/e2e/test_iam_enforcement.py) neither marks the removed grant used nor shifts
the marks of the statements after it.

What a run leaves unexercised is either a grant to remove or one kept for a stated reason: AWS needs it on a path
the local stack does not take (X-Ray, Lambda's own log delivery, a pipe's ListStreams), or a path the tests do not
exercise. The reasons are data, in ``unexercised_grants.json`` next to this module: ``policy`` (a pattern over the
policy's logical id without CDK's 8-character hash), ``actions`` (patterns over the grant's action as the template
writes it; ``fnmatch`` patterns, so a grant of the literal ``kms:*`` is named ``kms:[*]``: ``kms:*`` would also
cover ``kms:GenerateDataKey*``) and, optionally, ``resources`` (patterns over its resources). A grant takes the first
reason that covers it. :func:`explain` returns the grants no reason covers, and the reasons that cover nothing (a
stale reason hides the next unused grant, so it fails too).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from taskrail.local.iam.policies import Grant

__all__ = [
    "REASONS_FILE",
    "Coverage",
    "GrantUse",
    "Reason",
    "Unexercised",
    "explain",
    "load_reasons",
    "unexercised",
    "unexercised_in_every",
]

REASONS_FILE = Path(__file__).with_name("unexercised_grants.json")
_CDK_HASH = re.compile(r"[0-9A-F]{8}$")
_DECIDED_BY = re.compile(r"^(?P<policy>[^\s\[]+)\[(?P<index>\d+)\](?: \(Sid [^)]*\))?$")

GrantKey = tuple[str, tuple[str, ...], tuple[str, ...]]


def construct_of(policy: str) -> str:
    """The policy's logical id without CDK's hash: ``FnRoleDefaultPolicy9341E278`` -> ``FnRoleDefaultPolicy``."""
    return _CDK_HASH.sub("", policy)


def statement_of(decided_by: str) -> tuple[str, int] | None:
    """The (policy, statement index) an allowed decision names (``Policy[3]``, ``Policy[1] (Sid 1)``); None for
    anything else."""
    match = _DECIDED_BY.match(decided_by)
    return (match["policy"], int(match["index"])) if match else None


def _key(grant: Grant | dict[str, Any]) -> GrantKey:
    if isinstance(grant, Grant):
        return grant.policy, tuple(grant.actions), tuple(grant.resources)
    return str(grant["policy"]), tuple(grant["actions"]), tuple(grant["resources"])


class GrantUse:
    """The actions each statement allowed during a run (thread-safe; shared across reloads of the policies)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[GrantKey, set[str]] = {}

    def note(self, grant: Grant | dict[str, Any], action: str) -> None:
        with self._lock:
            self._used.setdefault(_key(grant), set()).add(action)

    def merge(self, other: GrantUse) -> None:
        """Add what ``other`` noted (several stacks of one test session)."""
        with other._lock:
            noted = {key: set(actions) for key, actions in other._used.items()}
        with self._lock:
            for key, actions in noted.items():
                self._used.setdefault(key, set()).update(actions)

    def actions(self, grant: Grant | dict[str, Any]) -> set[str]:
        with self._lock:
            return set(self._used.get(_key(grant), ()))


@dataclass(frozen=True)
class Unexercised:
    policy: str
    statement: int
    action: str
    resources: tuple[str, ...]

    @property
    def construct(self) -> str:
        return construct_of(self.policy)

    def describe(self) -> str:
        return f"{self.policy}[{self.statement}]: {self.action} on {', '.join(self.resources)}"


def unexercised(grants: Iterable[Grant | dict[str, Any]], used: Callable[[Any], set[str]]) -> list[Unexercised]:
    """Every action pattern of every Allow statement that no allowed call matched (``used(grant)``: its actions)."""
    found: list[Unexercised] = []
    for grant in grants:
        fields = grant if isinstance(grant, dict) else asdict(grant)
        if fields["effect"] != "Allow":
            continue
        actions = {a.lower() for a in used(grant)}
        for pattern in fields["actions"]:
            if not any(fnmatchcase(action, pattern.lower()) for action in actions):
                found.append(Unexercised(fields["policy"], fields["statement"], pattern, tuple(fields["resources"])))
    return found


def unexercised_in_every(runs: Iterable[list[Unexercised]]) -> list[Unexercised]:
    """The grants that several stacks of one template all left unexercised (one test session may start several):
    matched by policy, statement and action, not by resource, since each stack has physical names of its own (a
    WebSocket API's id, which the ManageConnections grant names, is drawn anew by every stack). Reported with the
    last run's resources."""
    left: dict[tuple[str, int, str], Unexercised] | None = None
    for run in runs:
        found = {(u.policy, u.statement, u.action): u for u in run}
        left = found if left is None else {key: found[key] for key in left.keys() & found.keys()}
    return sorted((left or {}).values(), key=lambda u: (u.policy, u.statement, u.action))


@dataclass(frozen=True)
class Reason:
    policy: str
    actions: tuple[str, ...]
    reason: str
    resources: tuple[str, ...] = ("*",)  # patterns over the grant's resources (any one matching)

    def covers(self, grant: Unexercised) -> bool:
        return (
            fnmatchcase(grant.construct, self.policy)
            and any(fnmatchcase(grant.action, a) for a in self.actions)
            and any(fnmatchcase(r, p) for r in grant.resources for p in self.resources)
        )


def load_reasons(path: Path = REASONS_FILE) -> list[Reason]:
    return [
        Reason(r["policy"], tuple(r["actions"]), r["reason"], tuple(r.get("resources", ["*"])))
        for r in json.loads(path.read_text())
    ]


@dataclass(frozen=True)
class Coverage:
    explained: list[tuple[Unexercised, Reason]] = field(default_factory=list)
    unexplained: list[Unexercised] = field(default_factory=list)
    stale: list[Reason] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unexplained and not self.stale

    def report(self) -> str:
        lines = [f"grants no call used: {len(self.explained) + len(self.unexplained)}"]
        lines += [f"  {g.describe()}\n      kept: {r.reason}" for g, r in self.explained]
        lines += [f"  {g.describe()}\n      NO REASON: remove the grant, or say why it stays" for g in self.unexplained]
        lines += [f"  stale reason (covers no unused grant): {r.policy} {list(r.actions)}" for r in self.stale]
        return "\n".join(lines)


def explain(grants: Iterable[Unexercised], reasons: Iterable[Reason]) -> Coverage:
    reasons = list(reasons)
    explained: list[tuple[Unexercised, Reason]] = []
    unexplained: list[Unexercised] = []
    for grant in grants:
        reason = next((r for r in reasons if r.covers(grant)), None)
        if reason is None:
            unexplained.append(grant)
        else:
            explained.append((grant, reason))
    used_reasons = {id(r) for _, r in explained}
    return Coverage(explained, unexplained, [r for r in reasons if id(r) not in used_reasons])
