"""What an emulator is: a part of the local stack that runs an AWS service (or a piece of one) moto does not run.

moto holds the resources and answers the APIs; an emulator does the work AWS does on its own behind them: run a
function's code (:mod:`taskrail.local.functions`), poll a stream for a pipe (:mod:`taskrail.local.pipes`), fire
a schedule (:mod:`taskrail.local.scheduler`), serve the REST API (:mod:`taskrail.local.apigw`), inject faults
(:mod:`taskrail.local.faults`). Each reads its own spec from the template (through the provisioned
:class:`~taskrail.local.provision.LocalResources`) and :class:`~taskrail.local.stack.LocalStack` starts them in
the order of its ``EMULATORS`` list and stops them in reverse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

__all__ = ["Emulator", "EmulatorContext", "Faults"]


class Faults(Protocol):
    """What emulators ask of the fault plan (:class:`taskrail.local.faults.FaultInjector`)."""

    def wrap(self, invoker: Any) -> Any: ...

    def duplicate(self) -> bool: ...

    def start(self, *, kill_worker: Callable[[str], int | None], pipes: Any) -> None: ...

    def stop(self) -> None: ...


@dataclass
class EmulatorContext:
    """Everything an emulator may read when it starts: the template, what was provisioned, the local endpoint."""

    template: dict[str, Any]
    # A taskrail.local.provision.LocalResources (named, not imported: the runners import this module and the
    # provisioner imports the runners).
    resources: Any
    resolve: Callable[[Any], Any]  # a taskrail.local.provision.Resolver
    endpoint: str  # the local AWS endpoint (moto, behind the guard)
    clients: Callable[[str], Any]  # service name → boto3 client of that endpoint
    faults: Faults
    time_scale: float = 1.0
    concurrency: int = 2
    #: the most workers a function scales out to when every one is busy (taskrail/local/functions.py); at or below
    #: ``concurrency``, none is added
    max_concurrency: int | None = None
    log_dir: Path | None = None
    extra_function_env: dict[str, str] = field(default_factory=dict)
    api_port: int = 0
    #: IAM enforcement (taskrail.local.iam.enforce.LocalIam): each principal's role session; None runs all as the stack.
    iam: Any = None
    #: The emulators started before this one, by name (a later one may drive an earlier one).
    running: dict[str, Emulator] = field(default_factory=dict)
    #: The project whose sources the stack follows (taskrail.local.reload); None: no reloading.
    project_root: Path | None = None
    #: The API Gateway in a process of its own (taskrail.local.apigw_process); False: in this one.
    api_process: bool = True


class Emulator(Protocol):
    #: Unique in the stack's list.
    name: ClassVar[str]
    #: Whether ``taskrail local reset`` stops it and starts it again over the freshly provisioned resources
    #: (the pollers: their stream iterators and timers belong to the old resources).
    restart_on_reset: ClassVar[bool]

    def start(self, context: EmulatorContext) -> None: ...

    def stop(self) -> None: ...
