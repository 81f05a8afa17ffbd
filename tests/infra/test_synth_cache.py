"""The synth cache (infra/synth.py) re-synthesizes when anything the template is made of changes, including the
dependency layer that `make setup` rebuilds for new pins (infra/layer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

import infra.layer
from infra import synth


def test_a_layer_built_for_other_pins_changes_the_sources_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(infra.layer, "LAYER_DIR", tmp_path)
    stamp = tmp_path / infra.layer.STAMP_NAME
    stamp.write_text("pins-a")
    before = synth.sources_digest()
    assert synth.sources_digest() == before  # the same sources: the cached template is used

    stamp.write_text("pins-b")

    assert synth.sources_digest() != before
