"""Whether this process stood still long enough to have lost its partitions.

A sender stopped outright for a while (SIGSTOP, a paused VM, a long swap
storm) sends no heartbeats: once its session times out, the group gives its
partitions to another sender, and nothing tells the stopped one until its
next heartbeat after it runs again. A send it was about to make then could
be the second, so the worker asks the group before such a call
(``SenderWorker._still_member``). It asks only after a stall: this watch
stamps the event loop's clock a few times a second and counts every gap long
enough for the session to have run out.

A call is judged by two things, so that it does not matter whether the watch
or the send runs first once the process runs again: the stalls counted since
the group last confirmed this sender, and the gap since the last stamp.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

# The consumer's own (aiokafka's defaults, set explicitly beside this).
SESSION_TIMEOUT_MS = 10_000
HEARTBEAT_INTERVAL_MS = 3_000
TICK_S = 0.5


def suspect_after_s(
    session_timeout_ms: int = SESSION_TIMEOUT_MS,
    heartbeat_interval_ms: int = HEARTBEAT_INTERVAL_MS,
    tick_s: float = TICK_S,
) -> float:
    """The shortest stall after which the group may have dropped this member:
    its session, less the heartbeat interval (the last heartbeat may be that
    old when the stall begins) and a tick (a stall begins up to one after the
    last stamp), less a second of margin."""
    return max(tick_s, (session_timeout_ms - heartbeat_interval_ms) / 1000 - tick_s - 1.0)


class StallWatch:
    def __init__(
        self,
        suspect_after: float | None = None,
        tick_s: float = TICK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._suspect_after = suspect_after if suspect_after is not None else suspect_after_s()
        self._tick_s = tick_s
        self._clock = clock
        self._last = clock()
        # Gaps of at least ``suspect_after`` seen so far.
        self.stalls = 0

    def stamp(self) -> None:
        now = self._clock()
        if now - self._last >= self._suspect_after:
            self.stalls += 1
        self._last = now

    def stalled_since(self, stalls_seen: int) -> bool:
        """Whether the loop stood still long enough since ``stalls`` was
        ``stalls_seen``, counted already or under way (not stamped yet)."""
        return self.stalls != stalls_seen or self._clock() - self._last >= self._suspect_after

    async def run(self) -> None:
        self._last = self._clock()  # from the start of watching, not of the process
        while True:
            await asyncio.sleep(self._tick_s)
            self.stamp()
