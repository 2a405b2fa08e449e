"""Per-endpoint bounded concurrency: a dead receiver fills only its own slots.

Due attempts queue per ``scheme://host:port``; at most ``limit`` run at once
for an endpoint, whatever the others do. Queued attempts are plain callables,
not tasks, so a long backlog for a dead endpoint costs little memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class EndpointQueue:
    def __init__(self, limit: int) -> None:
        self._limit = max(limit, 1)
        self._waiting: deque[Job] = deque()
        self._running: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        return len(self._waiting)

    def submit(self, job: Job) -> None:
        self._waiting.append(job)
        self._pump()

    def _pump(self) -> None:
        while self._waiting and len(self._running) < self._limit:
            job = self._waiting.popleft()
            task = asyncio.ensure_future(job())
            self._running.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook attempt crashed", exc_info=task.exception())
        self._pump()

    async def cancel(self) -> None:
        self._waiting.clear()
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)


class Endpoints:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._queues: dict[str, EndpointQueue] = {}

    def submit(self, endpoint: str, job: Job) -> None:
        queue = self._queues.get(endpoint)
        if queue is None:
            queue = self._queues[endpoint] = EndpointQueue(self._limit)
        queue.submit(job)

    async def cancel(self) -> None:
        for queue in self._queues.values():
            await queue.cancel()
