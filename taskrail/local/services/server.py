"""moto in server mode: one endpoint for every emulated service, in this process, behind the local guard.

Enabling execution in server mode (checked on 5.2.5): ``ThreadedMotoServer`` takes no config, and
``mock_aws(config=...)`` only patches ``moto.core.config.default_user_config`` for its own lifetime.
What works is ``MotoAPIBackend.set_config`` (what ``POST /moto-api/config`` calls) with
``{"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}``: it replaces those
top-level keys of the process-wide ``default_user_config``, read on every request, so it takes effect at once.
State machines created *before* it live in the plain backend and vanish from ``list_state_machines``
afterwards: configure first. The local AWS endpoint does not serve ``/moto-api`` (any page could reset the
stack with a form POST), so :func:`reset_moto` calls the backend in-process.
The interpreter calls the other services at ``http://localhost:$MOTO_PORT`` (read per call, default
5000), so ``MOTO_PORT`` must be set in the server's process to the port actually bound.
:func:`threaded_server` does all of this, and restores the config and ``MOTO_PORT`` on exit.
In-process (``mock_aws``) no endpoint is needed: the interpreter's boto3 clients are intercepted.
"""

from __future__ import annotations

import copy
import inspect
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import moto.core.responses as _core_responses
import moto.stepfunctions.responses as _sfn_responses
from moto.core.config import DefaultConfig, default_user_config
from moto.moto_api._internal.models import moto_api_backend
from moto.server import DomainDispatcherApplication, MotoRequestHandler, ThreadedMotoServer, create_backend_app

from taskrail.local.services.patching import Check, Patch, Signature, Source, is_patched, original, patch, unpatch

__all__ = ["LOCAL_MOTO_CONFIG", "PATCHES", "reset_moto", "threaded_server"]

#: For ``mock_aws(config=...)`` or ``POST /moto-api/config``: run state machines, Lambda without Docker.
LOCAL_MOTO_CONFIG: Final[DefaultConfig] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}

# --------------------------------------------------------------------------------------------------
# Server mode and in-process reset
# --------------------------------------------------------------------------------------------------


def reset_moto(config: Mapping[str, Any] | None = LOCAL_MOTO_CONFIG) -> None:
    """Empty every moto backend of this process and apply ``config``: what ``POST /moto-api/reset`` and
    ``POST /moto-api/config`` do, in-process (the local AWS endpoint does not serve ``/moto-api``)."""
    moto_api_backend.reset()
    if config:
        moto_api_backend.set_config(dict(config))


@contextmanager
def threaded_server(
    host: str = "127.0.0.1",
    port: int = 0,
    config: Mapping[str, Any] | None = LOCAL_MOTO_CONFIG,
    credentials: Mapping[str, Any] | None = None,
    authorizer: Any = None,
) -> Iterator[str]:
    """Run moto's server app in this process behind the local guard; yields its endpoint URL.

    The app is moto's own (``DomainDispatcherApplication(create_backend_app)`` with ``MotoRequestHandler``, as
    ``ThreadedMotoServer._server_entry`` builds it) wrapped in :class:`taskrail.local.guard.AwsEndpointGuard`:
    loopback Host only, no browser, no CORS, no ``/moto-api``, SigV4 by one of ``credentials`` (default:
    ``users.known_credentials()``), then ``authorizer`` if given (see the guard). Sets ``MOTO_PORT`` to the bound
    port (so the interpreter calls back to it), resets moto's process-wide backends and applies ``config``
    in-process. One server per process; restored on exit.
    """
    from werkzeug.serving import make_server

    from taskrail.local.guard import AwsEndpointGuard
    from taskrail.local.users import known_credentials

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the local AWS endpoint binds to loopback only, not {host!r}")
    saved_config = copy.deepcopy(dict(default_user_config))
    saved_port = os.environ.get("MOTO_PORT")
    app = AwsEndpointGuard(
        DomainDispatcherApplication(create_backend_app), credentials or known_credentials(), authorizer
    )
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="local-aws-endpoint", daemon=True)
    try:
        bound_port = server.server_address[1]
        os.environ["MOTO_PORT"] = str(bound_port)
        # moto's backends are process-wide: a new server starts empty, as a new stack should.
        reset_moto(config)
        thread.start()
        yield f"http://{host}:{bound_port}"
    finally:
        if thread.is_alive():
            server.shutdown()
            thread.join(timeout=10)
        server.server_close()
        if saved_port is None:
            os.environ.pop("MOTO_PORT", None)
        else:
            os.environ["MOTO_PORT"] = saved_port
        config_dict: dict[str, Any] = default_user_config  # type: ignore[assignment]
        config_dict.clear()
        config_dict.update(saved_config)


# Not a patch: the moto internals server mode and the in-process reset rely on.
SERVER_MODE: Final = Patch(
    "server mode, config and reset in-process",
    depends=(
        Signature(
            "moto.server.DomainDispatcherApplication.__init__",
            lambda: DomainDispatcherApplication.__init__,
            ("self", "create_app"),
        ),
        Signature("moto.server.create_backend_app", lambda: create_backend_app, ("service",)),
        Source(
            "moto.moto_server.threaded_moto_server.ThreadedMotoServer._server_entry",
            lambda: ThreadedMotoServer._server_entry,
            ("DomainDispatcherApplication(create_backend_app)", "request_handler=MotoRequestHandler"),
        ),
        Signature(
            "moto.moto_api._internal.models.MotoAPIBackend.reset", lambda: type(moto_api_backend).reset, ("self",)
        ),
        Signature(
            "moto.moto_api._internal.models.MotoAPIBackend.set_config",
            lambda: type(moto_api_backend).set_config,
            ("self", "config"),
        ),
        Source(
            "moto.moto_api._internal.models.MotoAPIBackend.set_config",
            lambda: type(moto_api_backend).set_config,
            ('default_user_config["stepfunctions"] = config["stepfunctions"]',),
        ),
        Source(
            "moto.stepfunctions.responses.get_backend",
            lambda: _sfn_responses.get_backend,
            ('get("execute_state_machine", False)', "stepfunctions_parser_backends"),
        ),
        Check(
            "moto.core.config.default_user_config",
            lambda: {"lambda", "stepfunctions"} <= set(default_user_config),
            "lacks 'lambda' or 'stepfunctions'",
        ),
    ),
)

# --------------------------------------------------------------------------------------------------
# Speed: find a request's backend once per host
# --------------------------------------------------------------------------------------------------

#: Hosts remembered at most (a host is the signing scope's service and region: a handful in practice; a client
#: naming made-up services is served moto's own way once the cache is full).
DISPATCH_CACHE_SIZE: Final = 256
_backend_for_host: dict[str | None, Any] = {}


def _cached_backend_for_host(self: DomainDispatcherApplication, host: str | None) -> Any:
    """moto's ``get_backend_for_host``, remembered per host. moto lists its package folder (``os.listdir`` and
    one ``isdir`` per service, ~200) and then tries every service's URL pattern, on every request and under the
    dispatcher's one lock: the answer depends on the host only (the folder and the patterns do not change while
    the process runs)."""
    try:
        return _backend_for_host[host]
    except KeyError:
        pass
    backend = original(DomainDispatcherApplication, "get_backend_for_host")(self, host)
    if len(_backend_for_host) < DISPATCH_CACHE_SIZE:
        _backend_for_host[host] = backend
    return backend


def install_dispatch_cache() -> None:
    if not is_patched(DomainDispatcherApplication, "get_backend_for_host"):
        patch(DomainDispatcherApplication, "get_backend_for_host", _cached_backend_for_host)


def uninstall_dispatch_cache() -> None:
    unpatch(DomainDispatcherApplication, "get_backend_for_host")
    _backend_for_host.clear()


DISPATCH_CACHE: Final = Patch(
    "find a request's backend once per host",
    depends=(
        Signature(
            "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host",
            lambda: original(DomainDispatcherApplication, "get_backend_for_host"),
            ("self", "host"),
        ),
        # what makes the answer a function of the host alone
        Source(
            "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_backend_for_host",
            lambda: original(DomainDispatcherApplication, "get_backend_for_host"),
            ("backends.list_of_moto_modules()", "for backend, pattern in self.backend_url_patterns:"),
        ),
        Source(
            "moto.moto_server.werkzeug_app.DomainDispatcherApplication.get_application",
            lambda: DomainDispatcherApplication.get_application,
            ("backend = self.get_backend_for_host(host)", "self.app_instances.get(backend, None)"),
        ),
    ),
    install=install_dispatch_cache,
    uninstall=uninstall_dispatch_cache,
)


class _FunctionNames:
    """``name in`` this is whether ``cls.name`` is a plain function: what moto asks of the list it builds."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and inspect.isfunction(getattr(self.cls, name, None))


def _function_names(cls: type) -> _FunctionNames:
    """moto's ``call_action`` asks ``action in method_names_from_class(self.__class__)``, and that lists every
    member of the response class (``inspect.getmembers``: a few hundred ``getattr`` and a sort) on every request;
    one ``getattr`` answers the same question."""
    return _FunctionNames(cls)


def _uses_of_method_names(source: str) -> int:
    """How often moto's module names ``method_names`` (the variable; the function's name aside)."""
    return source.count("method_names") - source.count("method_names_from_class")


def install_action_lookup() -> None:
    if not is_patched(_core_responses, "method_names_from_class"):
        patch(_core_responses, "method_names_from_class", _function_names)


def uninstall_action_lookup() -> None:
    unpatch(_core_responses, "method_names_from_class")


ACTION_LOOKUP: Final = Patch(
    "find a request's action method with one getattr",
    depends=(
        Source(
            "moto.core.responses.BaseResponse.call_action",
            lambda: _core_responses.BaseResponse.call_action,
            ("method_names = method_names_from_class(self.__class__)", "if action in method_names:"),
        ),
        # the only use of the list: if call_action used it otherwise, _FunctionNames would not do
        Check(
            "moto.core.responses",
            lambda: _uses_of_method_names(inspect.getsource(_core_responses)) == 2,
            "uses method_names other than in call_action's membership test",
        ),
        Source(
            "moto.core.utils.method_names_from_class",
            lambda: original(_core_responses, "method_names_from_class"),
            ("inspect.getmembers(clazz, predicate=predicate)", "predicate = inspect.isfunction"),
        ),
    ),
    install=install_action_lookup,
    uninstall=uninstall_action_lookup,
)

PATCHES: Final = (SERVER_MODE, DISPATCH_CACHE, ACTION_LOOKUP)
