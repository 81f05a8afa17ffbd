"""taskrail.local.services.registry: one check of every patch's moto dependencies; patches come off on exit."""

from __future__ import annotations

import time
import types

import pytest

from taskrail.local.services import lambda_, registry, stepfunctions
from taskrail.local.services.patching import Patch, Signature
from tests.local.services.harness import (
    RecordingInvoker,
    transient,
)


def test_assert_supported_moto_passes() -> None:
    registry.assert_supported_moto()


def test_assert_supported_moto_passes_while_hooks_installed() -> None:
    with (
        lambda_.lambda_invoker(RecordingInvoker(transient())),
        stepfunctions.time_scale(0),
        stepfunctions.install_mock_config({}),
    ):
        registry.assert_supported_moto()


def test_assert_supported_moto_passes_with_every_patch_installed() -> None:
    """A running stack installs every patch; its checks must read moto's own code, not another patch's
    replacement (an e2e test calls assert_supported_moto while a stack runs in the process)."""
    registry.install_aws_semantics()
    try:
        with lambda_.lambda_invoker(RecordingInvoker(transient())), stepfunctions.install_mock_config({}):
            registry.assert_supported_moto()
    finally:
        registry.uninstall_all()


def test_assert_supported_moto_names_the_symbol(monkeypatch: pytest.MonkeyPatch) -> None:
    import moto

    monkeypatch.setattr(moto, "__version__", "9.9.9")
    example = types.ModuleType("example")
    example.PATCHES = (  # type: ignore[attr-defined]
        Patch("example", depends=(Signature("example.Symbol.method", lambda: lambda a, b: None, ("a", "c")),)),
    )
    monkeypatch.setattr(registry, "SERVICES", (*registry.SERVICES, example))
    with pytest.raises(RuntimeError, match=r"moto.__version__: '9.9.9'") as info:
        registry.assert_supported_moto()
    assert "example.Symbol.method: parameters ['a', 'b'], expected ['a', 'c']" in str(info.value)


def test_hooks_are_removed_on_exit() -> None:
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    original_invoke = LambdaSimpleBackend.invoke
    with lambda_.lambda_invoker(RecordingInvoker(transient())), stepfunctions.time_scale(0.5):
        assert LambdaSimpleBackend.invoke is not original_invoke
        assert retrier_decl.time is not time
    assert LambdaSimpleBackend.invoke is original_invoke
    assert retrier_decl.time is time


def test_uninstall_all_gives_moto_back_every_attribute_whoever_installed_it() -> None:
    from taskrail.local.services import dynamodb, patching

    registry.install_aws_semantics()
    lambda_.install_lambda_invoker(RecordingInvoker(transient()))
    stepfunctions.set_time_scale(0)
    stepfunctions.set_mock_config({})
    with dynamodb.throttling(dynamodb.ThrottleRule("PutItem", "ThrottlingException", "marker")):
        installed = {attr for (_, attr) in patching._originals}
        registry.uninstall_all()
    assert {"invoke", "time", "_wait_interval", "start_execution", "stop", "put_item", "call_action"} <= installed
    assert patching._originals == {}, f"still patched: {sorted(attr for (_, attr) in patching._originals)}"


def test_every_patch_declares_what_it_relies_on() -> None:
    assert all(p.depends for p in registry.patches()), [p.name for p in registry.patches() if not p.depends]
    assert all(p.uninstall for p in registry.patches() if p.install), "a patch installed by default must come off"
