"""Each endpoint has its own bounded number of requests in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from services.webhooks.endpoints import Endpoints


async def test_a_stuck_endpoint_fills_only_its_own_slots() -> None:
    endpoints = Endpoints(limit=2)
    release = asyncio.Event()
    started: list[str] = []
    finished: list[str] = []

    def job(name: str, wait: bool) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            started.append(name)
            if wait:
                await release.wait()
            finished.append(name)

        return run

    for n in range(5):
        endpoints.submit("http://dead:80", job(f"dead-{n}", wait=True))
    for n in range(5):
        endpoints.submit("http://alive:80", job(f"alive-{n}", wait=False))
    for _ in range(20):
        await asyncio.sleep(0)
    assert [n for n in started if n.startswith("dead")] == ["dead-0", "dead-1"]
    assert sorted(n for n in finished if n.startswith("alive")) == [f"alive-{n}" for n in range(5)]

    release.set()
    for _ in range(20):
        await asyncio.sleep(0)
    assert sorted(n for n in finished if n.startswith("dead")) == [f"dead-{n}" for n in range(5)]
    await endpoints.cancel()
