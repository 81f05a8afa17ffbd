"""What live progress costs on AWS per task (issue 15): the WebSocket API's messages and connection minutes, the push
pipe's requests, the push function and the Connections table's units, for one client watching its task.

The counts are the design's, not a measurement: a watching client connects, subscribes to its task (a message in,
the "subscribed" answer out) and receives one message per record the push pipe passes (infra/constructs/live.py's
filters). On the happy path those records are the claim, the two progress writes of ``process_task.logic``
(0 and 100) and the terminal write: :data:`HAPPY_PUSHED_RECORDS`. A task finishes in under a minute (docs/COST.md),
so its connection bills one minute. Prices come from ``docs/prices.json``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from taskrail.cost.prices import DDB_READ, DDB_WRITE, LAMBDA_GB_SECOND, LAMBDA_REQUEST, PIPES_REQUEST, PriceBook

WS_MESSAGE: Final = "apigateway.websocket.message"
WS_CONNECTION_MINUTE: Final = "apigateway.websocket.connection_minute"
WS_MESSAGE_INCREMENT_KB: Final = "apigateway.websocket.message_increment_kb"
PER_TASKS: Final = 1_000_000
HAPPY_PUSHED_RECORDS: Final = 4
MESSAGE_BYTES: Final = 400  # a progress message (push_progress.models.ProgressMessage) is a few hundred bytes
PUSH_FUNCTION_MB: Final = 256  # PushProgressFunction (infra/constructs/functions.py PUSH_PROGRESS)
PUSH_MS_ASSUMED: Final = 20.0  # one invocation: a Query and one post (assumed, not measured)
# $connect PutItem, subscribe UpdateItem, $disconnect DeleteItem: each writes the table and its owner index.
CONNECTION_WRITE_UNITS: Final = 3 * 2
QUERY_READ_UNITS: Final = 0.5  # an eventually consistent Query of the owner index, under 4 KB


@dataclass(frozen=True)
class LiveUse:
    """What one watched task uses of the live channel."""

    pushed_records: int = HAPPY_PUSHED_RECORDS
    watchers: int = 1
    connection_minutes: float = 1.0
    message_bytes: int = MESSAGE_BYTES

    def messages(self, increment_kb: float) -> int:
        """Messages billed per watcher: the subscribe and its answer, one per pushed record (32 KB units)."""
        units = max(1, math.ceil(self.message_bytes / (increment_kb * 1024)))
        return self.watchers * (2 + self.pushed_records * units)


def live_cost(use: LiveUse, prices: PriceBook) -> dict[str, float]:
    """Dollars per task, by item."""
    gb_seconds = use.pushed_records * PUSH_MS_ASSUMED / 1000 * PUSH_FUNCTION_MB / 1024
    return {
        "WebSocket messages": use.messages(prices.rule(WS_MESSAGE_INCREMENT_KB)) * prices.each(WS_MESSAGE),
        "WebSocket connection minutes": use.watchers * use.connection_minutes * prices.each(WS_CONNECTION_MINUTE),
        "push pipe": use.pushed_records * prices.each(PIPES_REQUEST),
        "push function": use.pushed_records * prices.each(LAMBDA_REQUEST)
        + gb_seconds * prices.each(LAMBDA_GB_SECOND.format(architecture="arm64")),
        "Connections table": use.watchers * CONNECTION_WRITE_UNITS * prices.each(DDB_WRITE)
        + use.pushed_records * QUERY_READ_UNITS * prices.each(DDB_READ),
    }


def live_summary(prices: PriceBook, use: LiveUse | None = None) -> str:
    """One line for ``taskrail cost``: $ per 1 M tasks, each watched by one client, and its parts."""
    items = {name: value * PER_TASKS for name, value in live_cost(use or LiveUse(), prices).items()}
    parts = ", ".join(f"{name} ${value:,.2f}" for name, value in items.items())
    return (
        f"Live progress (WebSocket, one client watching each task, {(use or LiveUse()).pushed_records} pushed "
        f"changes): ${sum(items.values()):,.2f} per 1 M tasks ({parts}); the WebSocket API alone "
        f"${items['WebSocket messages'] + items['WebSocket connection minutes']:,.2f}."
    )
