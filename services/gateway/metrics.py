"""Prometheus metrics of the HTTP API: requests by route and status."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "dispatch_gateway_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)


# Each labelled child once: ``labels()`` costs more than ``inc()``. As many
# entries as the metric has series.
_COUNTERS: dict[tuple[str, str, int], Any] = {}


def count_request(template: str, method: str, status: int) -> None:
    key = (template, method, status)
    counter = _COUNTERS.get(key)
    if counter is None:
        counter = _COUNTERS[key] = REQUESTS.labels(template, method, str(status))
    counter.inc()


class RequestMetrics:
    """ASGI middleware: counts every answered request by its route template
    (not the raw path, which would make one series per dispatch_uuid)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_count(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_count)
        finally:
            route = scope.get("route")
            count_request(getattr(route, "path", None) or "unmatched", scope["method"], status)
