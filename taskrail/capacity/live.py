"""The WebSocket API's quotas for live progress (issue 15), as ``taskrail capacity`` prints them: read from
docs/quotas.json, each with its figure and source. They bound a connection (lifetime, idle time, frame and message
size) and the account's rate of new connections, not the tasks' throughput, so they are listed, not modelled."""

from __future__ import annotations

from typing import Final

from taskrail.capacity.quotas import QuotaBook

PREFIX: Final = "apigateway.websocket."


def _figure(value: float, unit: str) -> str:
    if unit == "seconds":
        return f"{value / 3600:g} h" if value >= 3600 else f"{value / 60:g} min"
    if unit == "bytes":
        return f"{value / 1024:g} KB"
    return f"{value:,.0f} {unit}"


def websocket_quotas(book: QuotaBook, region: str) -> list[tuple[str, str, bool | None, str]]:
    """(name, figure, adjustable, citation) of each WebSocket API quota of the book."""
    return [
        (quota.name, _figure(quota.at(region), quota.unit), quota.adjustable, quota.cited())
        for key, quota in sorted(book.quotas.items())
        if key.startswith(PREFIX) and quota.known
    ]


def websocket_lines(book: QuotaBook, region: str) -> list[str]:
    rows = websocket_quotas(book, region)
    if not rows:
        return []
    source = rows[0][3]
    return [
        "Live progress (WebSocket API) quotas, per connection and account (listed, not modelled):",
        *[f"  - {name}: {figure}{'' if adjustable else ' (not adjustable)'}" for name, figure, adjustable, _ in rows],
        f"    source: {source}",
    ]
