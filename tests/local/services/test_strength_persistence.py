"""A `--state-dir` snapshot is loaded only by the stack that could have written it (docs/TEST-STRENGTH.md, area
emulator): the snapshot pickles moto's own objects, so another snapshot format *or* another moto version is
refused with the way out, each on its own (a snapshot differing in both is in test_persistence.py)."""

from __future__ import annotations

import pickle
from pathlib import Path

import moto
import pytest

from taskrail.local.services.persistence import FORMAT, SNAPSHOT_FILE, SnapshotRefused, restore


@pytest.mark.parametrize(
    ("written_format", "written_moto"),
    [(FORMAT, "4.0.0"), (FORMAT + 1, moto.__version__)],
    ids=["same-format-other-moto", "other-format-same-moto"],
)
def test_a_snapshot_differing_only_in_format_or_only_in_moto_is_refused(
    aws, tmp_path: Path, written_format: int, written_moto: str
):
    path = tmp_path / SNAPSHOT_FILE
    path.write_bytes(pickle.dumps({"format": written_format, "moto": written_moto}))
    path.chmod(0o600)

    with pytest.raises(SnapshotRefused, match="written by another version") as refused:
        restore(path)
    assert f"format {written_format}, moto {written_moto}" in str(refused.value)
    assert "move it away to start empty" in str(refused.value)
