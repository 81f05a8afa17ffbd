"""taskrail capacity's live-progress quotas (taskrail/capacity/live.py): the WebSocket API's figures from
docs/quotas.json, with their source, and the design read counts the template's WebSocket APIs."""

from __future__ import annotations

from typing import Any

from taskrail.capacity.design import read_design
from taskrail.capacity.live import websocket_lines, websocket_quotas
from taskrail.capacity.quotas import load_quotas

WEBSOCKET_QUOTAS_PAGE = "https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html"


def test_the_websocket_quotas_are_awss_figures_with_their_page():
    rows = {name: (figure, adjustable) for name, figure, adjustable, _ in websocket_quotas(load_quotas(), "us-east-1")}
    assert rows == {
        "Connection duration for WebSocket API": ("2 h", False),
        "Idle Connection Timeout (WebSocket API)": ("10 min", False),
        "WebSocket frame size": ("32 KB", False),
        "Message payload size (WebSocket API)": ("128 KB", False),
        "New WebSocket connections per second": ("500 new connections per second", True),
    }
    assert all(WEBSOCKET_QUOTAS_PAGE in cited for *_, cited in websocket_quotas(load_quotas(), "us-east-1"))


def test_the_lines_name_each_quota_and_the_source(template: dict[str, Any]):
    lines = websocket_lines(load_quotas(), "eu-west-1")
    print("\n".join(lines))
    assert lines[0].startswith("Live progress (WebSocket API) quotas")
    assert "  - Connection duration for WebSocket API: 2 h (not adjustable)" in lines
    assert WEBSOCKET_QUOTAS_PAGE in lines[-1]
    # The synthesized template has the live-progress API, so `taskrail capacity` prints them
    assert read_design(template).websocket_apis == 1
