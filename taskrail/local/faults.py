"""Fault injection for the local stack (off by default): the failures storage-first must survive.

- ``transient``: per function, the fraction of invocations that fail as the handler raising
  ``TransientTaskError`` (the handler is not run; the workflow retries it like any transient error);
- ``throttled``: the fraction of invocations the Lambda service refuses (``Lambda.TooManyRequestsException``);
- ``malformed``: per function, the fraction of invocations answered with a JSON array instead of the handler's
  object (the handler is not run): the state's ResultSelector then fails with ``States.Runtime``, which no Retry
  or Catch handles ("Error handling in Step Functions workflows"), so the execution fails outright;
- ``duplicate_deliveries``: the fraction of stream records a pipe delivers twice;
- ``kill_every``: seconds between SIGKILLs of a busy worker of a function (its invocation fails with
  ``Runtime.ExitError`` and a replacement starts);
- ``poller_outage``: (start, duration) in seconds after the stack started: the pipe pollers pause, then resume.

Every choice comes from one seeded random generator, so a run can be repeated. Switched on by
:class:`FaultPlan` in ``StackOptions.faults`` or by ``taskrail local up --faults plan.json``.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, Field

from taskrail.local.services.lambda_ import InvokeOutcome, LambdaThrottled

if TYPE_CHECKING:
    from taskrail.local.emulator import EmulatorContext, Faults

Invoker = Callable[[str, bytes, str | None], InvokeOutcome]
# A successful answer that is not the object a state's ResultSelector reads ($.Payload.taskId, …).
MALFORMED_ANSWER = ["injected", "malformed", "answer"]


class FaultPlan(BaseModel):
    seed: int = 7
    transient: dict[str, float] = Field(default_factory=dict)  # construct name → fraction
    throttled: dict[str, float] = Field(default_factory=dict)
    malformed: dict[str, float] = Field(default_factory=dict)
    duplicate_deliveries: float = Field(default=0.0, ge=0, le=1)
    kill_every: dict[str, float] = Field(default_factory=dict)  # construct name → seconds
    poller_outage: tuple[float, float] | None = None

    @property
    def active(self) -> bool:
        return bool(
            self.transient
            or self.throttled
            or self.malformed
            or self.duplicate_deliveries
            or self.kill_every
            or self.poller_outage
        )


@dataclass
class FaultInjector:
    plan: FaultPlan
    names: dict[str, str]  # function name or ARN → construct name
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.plan.seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _roll(self, fraction: float) -> bool:
        with self._lock:
            return fraction > 0 and self._random.random() < fraction

    def wrap(self, invoker: Invoker) -> Invoker:
        def invoke(function_name: str, payload: bytes, qualifier: str | None) -> InvokeOutcome:
            construct = self.names.get(function_name, function_name)
            if self._roll(self.plan.throttled.get(construct, 0.0)):
                self.injected[f"throttled:{construct}"] += 1
                raise LambdaThrottled()
            if self._roll(self.plan.transient.get(construct, 0.0)):
                self.injected[f"transient:{construct}"] += 1
                return InvokeOutcome.unhandled("TransientTaskError", "injected transient fault")
            if self._roll(self.plan.malformed.get(construct, 0.0)):
                self.injected[f"malformed:{construct}"] += 1
                return InvokeOutcome.success(MALFORMED_ANSWER)
            return invoker(function_name, payload, qualifier)

        return invoke

    def duplicate(self) -> bool:
        """Asked by a pipe once per delivered record: deliver it a second time?"""
        if self._roll(self.plan.duplicate_deliveries):
            self.injected["duplicate_delivery"] += 1
            return True
        return False

    def start(self, *, kill_worker: Callable[[str], int | None], pipes: Any) -> None:
        for construct, every in self.plan.kill_every.items():
            self._thread(self._killer, construct, every, kill_worker)
        if self.plan.poller_outage:
            self._thread(self._outage, pipes, *self.plan.poller_outage)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _thread(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"fault-{target.__name__}")
        thread.start()
        self._threads.append(thread)

    def _killer(self, construct: str, every: float, kill_worker: Callable[[str], int | None]) -> None:
        while not self._stop.wait(every):
            if kill_worker(construct) is not None:
                self.injected[f"killed:{construct}"] += 1

    def _outage(self, pipes: Any, start: float, duration: float) -> None:
        if self._stop.wait(start):
            return
        pipes.pause()
        self.injected["poller_outage"] += 1
        self._stop.wait(duration)
        pipes.resume()


class FaultsEmulator:
    """Drives the fault plan's timed faults (worker kills, the poller outage) against the emulators started before
    it: the Lambda emulator's pool and the pipes the stack started with."""

    name: ClassVar[str] = "faults"
    restart_on_reset: ClassVar[bool] = False

    def __init__(self) -> None:
        self.injector: Faults | None = None

    def start(self, context: EmulatorContext) -> None:
        lambda_, pipes = context.running["lambda"], context.running["pipes"]
        self.injector = context.faults
        self.injector.start(kill_worker=lambda_.pool.kill_worker, pipes=pipes.runner)  # type: ignore[attr-defined]

    def stop(self) -> None:
        if self.injector is not None:
            self.injector.stop()
