"""Forcing the interleaving that breaks a non-atomic conditional write in moto, without timing.

Used by the hook's own test (tests/local/services/test_dynamodb.py) and by the workflow's duplicate-start race
(tests/workflows/test_task_lifecycle.py): without ``install_atomic_dynamodb_writes`` both fail every time.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from taskrail.local.services import dynamodb


class ClaimRace:
    """Forces the interleaving that breaks a non-atomic conditional write, without timing.

    Each writer that has evaluated its condition waits until another writer has either evaluated its own
    condition too (then both passed it before either wrote: the race) or is waiting for the hook's write lock
    (then the lock serialises them). Without the hook the lock is never taken, so two claims always both pass.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._at_check: set[int] = set()
        self._wanting_lock: set[int] = set()

    def wants_lock(self) -> None:
        with self._changed:
            self._wanting_lock.add(threading.get_ident())
            self._changed.notify_all()

    def condition_evaluated(self) -> None:
        me = threading.get_ident()
        with self._changed:
            self._at_check.add(me)
            self._changed.notify_all()
            # A hang guard only: one of the two events happens at once whatever the machine's speed.
            others = self._changed.wait_for(lambda: (self._at_check | self._wanting_lock) - {me}, timeout=60)
        assert others, "the other writer neither evaluated its condition nor waited for the write lock"


class _ObservedLock:
    def __init__(self, lock: Any, race: ClaimRace) -> None:
        self._lock, self._race = lock, race

    def __enter__(self) -> None:
        self._race.wants_lock()
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def gate_condition_checks(monkeypatch: pytest.MonkeyPatch, race: ClaimRace) -> None:
    """Wraps moto's UpdateItem condition check (``moto.dynamodb.models.create_condition_expression_parser``)
    and the hook's write lock so that ``race`` sees both."""
    import moto.dynamodb.models as dynamodb_models

    create_parser = dynamodb_models.create_condition_expression_parser

    class GatedCondition:
        def __init__(self, condition: Any) -> None:
            self._condition = condition

        def expr(self, item: Any) -> bool:
            passed = self._condition.expr(item)
            race.condition_evaluated()
            return passed

    class GatedParser:
        def __init__(self, parser: Any) -> None:
            self._parser = parser

        def parse(self) -> GatedCondition:
            return GatedCondition(self._parser.parse())

    monkeypatch.setattr(
        dynamodb_models, "create_condition_expression_parser", lambda *a, **k: GatedParser(create_parser(*a, **k))
    )
    monkeypatch.setattr(dynamodb, "_dynamodb_write_lock", _ObservedLock(dynamodb._dynamodb_write_lock, race))
