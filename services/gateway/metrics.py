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


class RequestMetrics:
    """ASGI middleware: counts every answered request by its route template
    (not the raw path, which would make one series per dispatch_uuid)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Each labelled child once: ``labels()`` costs more than ``inc()``.
        self._counters: dict[tuple[str, str, int], Any] = {}

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
            template = getattr(route, "path", None) or "unmatched"
            key = (template, scope["method"], status)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = REQUESTS.labels(key[0], key[1], str(status))
            counter.inc()
