"""The console's live relay (taskrail/console.py ``/api/live``): pushed changes when the stack has a WebSocket
channel, and the polling fallback, with its reason, when it has none."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import pytest

from taskrail.console import LIVE_WAIT_SECONDS, ConsoleDependencies, ConsoleError, ConsoleService


def unused(*_: Any) -> Any:
    raise AssertionError("the live relay reads nothing else of the stack")


def console(live: Any) -> ConsoleService:
    return ConsoleService(ConsoleDependencies(info=unused, aws=unused, operator=unused, owner_client=unused, live=live))


class FakeFeed:
    url = "ws://127.0.0.1:1/live"

    def __init__(self) -> None:
        self.asked: list[tuple[int, float]] = []

    def changes_after(self, after: int, timeout: float) -> tuple[int, list[dict[str, Any]]]:
        self.asked.append((after, timeout))
        return after + 1, [{"taskId": "t-1", "status": "RUNNING", "progress": 50}]


def test_without_a_channel_the_relay_answers_none_and_why_so_the_page_polls():
    # Given a stack without a WebSocket channel (its live feed is None)
    service = console(live=lambda: None)

    # When the page asks for pushed changes, Then it is told there is no channel and why (it polls every 2 s)
    assert service.route("GET", ["api", "live"], {"after": "0"}) == {"channel": None, "reason": "no WebSocket channel"}


def test_with_a_channel_the_relay_long_polls_the_feed_for_changes_after_the_pages_sequence():
    feed = FakeFeed()
    service = console(live=lambda: feed)

    answer = service.route("GET", ["api", "live"], {"after": "7"})

    assert answer == {
        "channel": "websocket",
        "url": feed.url,
        "sequence": 8,
        "changes": [{"taskId": "t-1", "status": "RUNNING", "progress": 50}],
    }
    assert feed.asked == [(7, LIVE_WAIT_SECONDS)]


def test_a_sequence_that_is_not_a_number_is_refused():
    with pytest.raises(ConsoleError) as refused:
        console(live=FakeFeed).route("GET", ["api", "live"], {"after": "soon"})
    assert refused.value.status == HTTPStatus.BAD_REQUEST
