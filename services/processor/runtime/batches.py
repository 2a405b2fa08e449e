"""Batches of a faust stream's events that cost nothing while none come.

faust's ``Stream.take_events(max_, within)`` waits for a full buffer with a
timeout of ``within`` and, finding the buffer empty, waits again: with the
2 ms the processor batches within, an idle worker woke its agent 500 times a
second, each time making and cancelling the futures of a ``wait_first`` (about
3 % of a core, with nothing to do). ``take_batches`` waits without a timeout
for the first event, then up to ``within`` for the buffer to fill, so a quiet
stream costs no wake-ups and a busy one batches as before.

Otherwise it is ``take_events`` as faust-streaming 0.15 writes it: the events
reach the buffer through a stream processor while the stream is drained
passively, acknowledgements are the caller's (``enable_acks`` off), and each
batch's events are acknowledged once the caller is done with it.

faust internals touched (pinned by ``tests/unit/processor/test_runtime_contract.py``):
``Stream.add_processor``, ``Stream._processors``, ``Stream._enable_passive``,
``Stream._active_agens``, ``Stream.enable_acks``, ``Stream.current_event``,
``Stream.wait_for_stopped``, ``Stream.should_stop``, ``Stream.ack``,
``Stream.channel``, ``Stream.crash``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from mode.utils.futures import notify


def take_batches(stream: Any, max_: int, within: float) -> AsyncIterator[Sequence[Any]]:
    """Lists of up to ``max_`` events: a batch starts with the first event to
    come (however long that takes) and ends when full or ``within`` seconds
    after it started."""
    batches = _take_batches(stream, max_, within)
    # Registered as faust registers its own: the stream closes it when stopping.
    stream._active_agens.add(batches)
    return batches


async def _take_batches(stream: Any, max_: int, within: float) -> AsyncIterator[Sequence[Any]]:
    events: list[Any] = []
    arrived = asyncio.Event()
    full = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None

    async def add_to_buffer(value: Any) -> Any:
        # Runs in the stream's passive drain, once per event.
        nonlocal consuming
        try:
            if consuming is not None:
                try:
                    await consuming  # the caller is reading the batch
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("a batched event has no current event")
            events.append(event)
            arrived.set()
            if len(events) >= max_:
                full.set()
                consumed.clear()
                await stream.wait(consumed)  # never more than max_ in a batch
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    acks_before = stream.enable_acks
    stream.enable_acks = False
    stream.add_processor(add_to_buffer)
    stream._enable_passive(aiter(stream.channel))
    try:
        while not stream.should_stop:
            if not events:
                await stream.wait_for_stopped(arrived)  # no timeout: asleep while idle
            await stream.wait_for_stopped(full, timeout=within)
            if not events:
                arrived.clear()
                continue
            consuming = asyncio.get_running_loop().create_future()
            try:
                yield list(events)
            finally:
                batch, events[:] = list(events), []
                arrived.clear()
                for event in batch:
                    await stream.ack(event)
                notify(consuming)
                full.clear()
                consumed.set()
    finally:
        stream.enable_acks = acks_before
        stream._processors.remove(add_to_buffer)
