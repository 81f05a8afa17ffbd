"""taskrail cost's live-progress line (taskrail/cost/live.py): the WebSocket API's price file entries applied to the
messages and connection minutes one watched task uses, by hand."""

from __future__ import annotations

import pytest

from taskrail.cost.live import LiveUse, live_cost, live_summary
from taskrail.cost.prices import load_prices


@pytest.fixture(scope="module")
def prices():
    return load_prices()


def test_the_websocket_prices_come_from_the_pricing_page(prices):
    message, minute = (
        prices.prices["apigateway.websocket.message"],
        prices.prices["apigateway.websocket.connection_minute"],
    )
    assert (message.usd, message.per, minute.usd, minute.per) == (1.0, 1_000_000, 0.25, 1_000_000)
    assert message.source == minute.source == "https://aws.amazon.com/api-gateway/pricing/"
    assert prices.rule("apigateway.websocket.message_increment_kb") == 32


def test_a_watched_task_pays_its_messages_and_one_connection_minute(prices):
    # One watcher, 4 pushed changes: subscribe + its answer + 4 messages = 6 messages at $1 per million
    items = {name: value * 1_000_000 for name, value in live_cost(LiveUse(), prices).items()}
    assert items["WebSocket messages"] == pytest.approx(6.0)
    assert items["WebSocket connection minutes"] == pytest.approx(0.25)
    assert items["push pipe"] == pytest.approx(4 * 0.4)
    print(live_summary(prices))


def test_messages_are_metered_in_32_kb_units_and_per_watcher(prices):
    assert LiveUse(message_bytes=400).messages(32) == 6
    assert LiveUse(message_bytes=33 * 1024).messages(32) == 2 + 4 * 2  # a 33 KB message is two
    assert LiveUse(watchers=2).messages(32) == 12
