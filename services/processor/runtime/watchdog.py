"""An exit for a worker whose table recovery has stalled.

faust-streaming's recovery can wait forever for changelog records that never
come (seen once after a rebalance: fetches going out, nothing delivered). A
worker stuck there owns partitions and fires none of their timers; a fresh
one, started by the supervisor, recovers them.

faust internals touched (pinned by ``tests/unit/processor/test_runtime_contract.py``):
``Recovery.in_recovery``, ``Recovery._recovery_started_at``,
``Recovery._active_events_received_at``, ``App.tables.recovery``.
"""

from __future__ import annotations

import time
from typing import Any, cast

import faust

from services.processor.runtime.context import exit_now

# How often the watchdog looks.
RECOVERY_CHECK_S = 5.0


def recovery_silence(recovery: Any, now: float) -> float | None:
    """Seconds since faust's table recovery last received a changelog record
    (or started), or None when no recovery is in progress. ``now`` is
    ``time.monotonic()``, the clock faust stamps these with."""
    started = getattr(recovery, "_recovery_started_at", None)
    if not getattr(recovery, "in_recovery", False) or started is None:
        return None
    received = getattr(recovery, "_active_events_received_at", {})
    return float(now - max(received.values(), default=started))


def watch_recovery(app: faust.App, stall_s: float) -> None:
    """Exit (status 75) when recovery has received nothing for ``stall_s``."""

    @app.timer(interval=RECOVERY_CHECK_S)
    async def recovery_watchdog() -> None:
        silent = recovery_silence(cast(Any, app.tables).recovery, time.monotonic())
        if silent is not None and silent > stall_s:
            exit_now(75, "recovery has received nothing for %.0f s, exiting", silent)

    del recovery_watchdog
