"""One timestamp format (docs/DECISIONS.md "Timestamps"): the contract's two writers of it agree, in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from task_common.contract import TIMESTAMP_PATTERN, api_time, api_timestamp


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(2026, 12, 1, 15, 34, 22, 123456, tzinfo=UTC), "2026-12-01T15:34:22.123Z"),
        (datetime(2026, 12, 1, 15, 34, 22, tzinfo=UTC), "2026-12-01T15:34:22.000Z"),
        (datetime(2026, 12, 1, 16, 34, 22, 999999, tzinfo=timezone(timedelta(hours=1))), "2026-12-01T15:34:22.999Z"),
        (datetime(2000, 2, 29, 0, 0, 0, 1000, tzinfo=UTC), "2000-02-29T00:00:00.001Z"),
    ],
)
def test_a_moment_is_written_in_utc_with_milliseconds(moment: datetime, written: str):
    assert api_time(moment) == written
    assert re.fullmatch(TIMESTAMP_PATTERN, written)


@pytest.mark.parametrize("epoch_ms", [1_000, 951_782_400_001, 1_764_603_262_123, 253_402_300_799_999])
def test_epoch_milliseconds_and_the_same_moment_are_written_alike(epoch_ms: int):
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=epoch_ms)

    assert api_timestamp(epoch_ms) == api_time(moment)
