"""How a service module patches moto, and how it declares what of moto it relies on (moto 5.2.5 exactly).

A patch replaces one attribute of a moto class or module and remembers moto's own, so that uninstalling gives
it back and a patched function can call through (:func:`original`). Each :class:`Patch` lists, next to its
code, the moto internals it was written against: the parameters of a function (:class:`Signature`), fragments
of its source (:class:`Source`), or any other property (:class:`Check`). :mod:`taskrail.local.services.registry`
checks every declaration of every service at once (``assert_supported_moto``), so an upgrade of moto that
changes one of them fails loudly, naming the symbol, instead of silently changing what the local stack does.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

__all__ = ["Check", "Dependency", "Patch", "Signature", "Source", "is_patched", "lock", "original", "patch", "unpatch"]

#: Guards the patch bookkeeping and the module-level state of every service module.
lock = threading.RLock()
_originals: dict[tuple[Any, str], Any] = {}


def patch(owner: type | ModuleType, attr: str, replacement: Any) -> None:
    """Replace ``owner.attr`` (moto's own attribute is kept for :func:`original` and :func:`unpatch`)."""
    with lock:
        _originals.setdefault((owner, attr), vars(owner)[attr])
        setattr(owner, attr, replacement)


def unpatch(owner: type | ModuleType, attr: str) -> None:
    with lock:
        if (owner, attr) in _originals:
            setattr(owner, attr, _originals.pop((owner, attr)))


def is_patched(owner: type | ModuleType, attr: str) -> bool:
    return (owner, attr) in _originals


def original(owner: type | ModuleType, attr: str) -> Any:
    """moto's own attribute, whether or not we have patched it."""
    with lock:
        return _originals.get((owner, attr), vars(owner).get(attr))


@dataclass(frozen=True)
class Signature:
    """``symbol`` (got by ``get``) still takes exactly these parameters, in this order."""

    symbol: str
    get: Callable[[], Any]
    parameters: tuple[str, ...]

    def problem(self) -> str | None:
        try:
            actual = list(inspect.signature(self.get()).parameters)
        except Exception as exc:
            return f"{self.symbol}: missing or not inspectable ({exc!r})"
        if actual != list(self.parameters):
            return f"{self.symbol}: parameters {actual}, expected {list(self.parameters)}"
        return None


@dataclass(frozen=True)
class Source:
    """The source of ``symbol`` (got by ``get``) still contains each of these fragments."""

    symbol: str
    get: Callable[[], Any]
    fragments: tuple[str, ...]

    def problem(self) -> str | None:
        try:
            source = inspect.getsource(self.get())
        except Exception as exc:
            return f"{self.symbol}: missing or source unavailable ({exc!r})"
        missing = [f for f in self.fragments if f not in source]
        return f"{self.symbol}: source no longer contains {missing}" if missing else None


@dataclass(frozen=True)
class Check:
    """Any other property a patch relies on: ``holds()`` is true, else ``symbol: expectation`` is the problem."""

    symbol: str
    holds: Callable[[], bool]
    expectation: str

    def problem(self) -> str | None:
        try:
            return None if self.holds() else f"{self.symbol}: {self.expectation}"
        except Exception as exc:
            return f"{self.symbol}: {self.expectation} ({exc!r})"


Dependency = Signature | Source | Check


@dataclass(frozen=True)
class Patch:
    """One change to moto, with what it depends on.

    ``install`` is set for a patch every local run needs (the registry's ``install_aws_semantics`` installs it);
    it is None for a patch its module installs with an argument (an invoker, a time scale, a mock config,
    throttle rules). ``uninstall`` always gives moto back its own code, whoever installed the patch. A touch
    point that changes nothing (moto's server app, its config API) is a Patch with neither.
    """

    name: str
    depends: tuple[Dependency, ...]
    install: Callable[[], None] | None = None
    uninstall: Callable[[], None] | None = None

    def problems(self) -> list[str]:
        return [problem for dependency in self.depends if (problem := dependency.problem())]

    def assert_supported(self) -> None:
        """Raise RuntimeError naming every dependency of this patch that moto no longer meets."""
        if problems := self.problems():
            raise RuntimeError(f"moto changed under the patch {self.name!r}: " + "; ".join(problems))
