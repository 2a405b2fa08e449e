"""Tests wait on what they expect, never for a guessed time.

``wait_until`` returns as soon as the condition holds and fails, naming what
was awaited, if it does not within the timeout. ``holds_for`` is for the one
thing no condition can signal, that something does *not* happen: it watches
for the whole window and fails as soon as the condition breaks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

POLL_S = 0.05


async def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, *, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        await asyncio.sleep(POLL_S)


async def holds_for(predicate: Callable[[], bool], window_s: float, *, what: str) -> None:
    deadline = time.monotonic() + window_s
    while time.monotonic() < deadline:
        assert predicate(), f"no longer true: {what}"
        await asyncio.sleep(POLL_S)
    assert predicate(), f"no longer true: {what}"
