"""uvicorn's server, woken once a second at rest instead of ten times.

uvicorn's main loop sleeps 100 ms between ticks: each tick refreshes the
``date`` header (once a second) and checks whether the server should stop.
An idle process woke ten times a second for that; this loop sleeps a second
and is woken at once by a stop signal, so stopping is as prompt as before.
Code that sets ``should_exit`` itself (the projector, when its follower dies)
is noticed within the second.

uvicorn internals touched (pinned by ``tests/unit/test_http_server.py``):
``Server.main_loop`` (replaced: the same ticks, ten counts at a time),
``Server.on_tick`` (its counter), ``Server.handle_exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from types import FrameType
from typing import Any

import uvicorn

TICK_S = 1.0
# uvicorn refreshes the date header when the counter is a multiple of this.
_TICKS_PER_SECOND = 10
_COUNTER_WRAP = 864000
# What ``uvicorn.run`` exits with when the server could not start (a port in use).
STARTUP_FAILURE = 3


class Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exiting: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._exiting = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + _TICKS_PER_SECOND) % _COUNTER_WRAP
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exiting.wait(), TICK_S)
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and self._exiting is not None:
            # A signal handler runs between two bytecodes of the loop's own
            # thread: hand the wake-up to the loop rather than set it here.
            self._loop.call_soon_threadsafe(self._exiting.set)


def run(app: Any, **options: Any) -> None:
    """``uvicorn.run`` for one process (no workers, no reload) on this server."""
    server = Server(uvicorn.Config(app, **options))
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
