"""A recovery ends by seeking to the committed offsets, then resuming the flow,
which empties the stream buffers. What was read before the seek must go (it is
read again), what was read after it must stay: dropped, it was never folded
while faust counted it as read, and commits went past it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mode.utils.queues import FlowControlEvent, FlowControlQueue

from services.processor.runtime import handover


class App:
    def __init__(self) -> None:
        self.flow_control = FlowControlEvent()


class Consumer:
    def __init__(self, app: App) -> None:
        self.app = app


@pytest.fixture
def patched(monkeypatch: pytest.MonkeyPatch) -> tuple[App, FlowControlQueue[str], Any]:
    """faust's recovery ending, as it runs: seek, then resume the flow; a
    record arrives while the seek's request is out, and one just after it."""
    app = App()
    consumer = Consumer(app)
    buffer: FlowControlQueue[str] = FlowControlQueue(
        flow_control=app.flow_control, clear_on_resume=True
    )

    async def faust_perform_seek(self: Any) -> None:
        buffer.put_nowait("read before the seek took effect")
        await asyncio.sleep(0)
        buffer.put_nowait("read after the seek")

    async def faust_on_recovery_completed(self: Any, generation_id: int = 0) -> None:
        await consumer.perform_seek()  # type: ignore[attr-defined]
        app.flow_control.resume()

    from faust.tables.recovery import Recovery
    from faust.transport import consumer as faust_consumer

    for target, name in (
        (faust_consumer.Consumer, "perform_seek"),
        (FlowControlEvent, "resume"),
        (Recovery, "on_recovery_completed"),
        (Recovery, "_resume_streams"),
    ):
        monkeypatch.setattr(target, name, getattr(target, name))  # restored after the test
    monkeypatch.setattr(handover, "_perform_seek", faust_perform_seek)
    monkeypatch.setattr(handover, "_on_recovery_completed", faust_on_recovery_completed)
    handover.keep_what_is_read_after_the_last_seek()
    consumer.perform_seek = lambda: faust_consumer.Consumer.perform_seek(consumer)  # type: ignore[attr-defined]
    return app, buffer, Recovery.on_recovery_completed


async def test_a_record_read_after_the_last_seek_is_kept(patched: Any) -> None:
    app, buffer, on_recovery_completed = patched
    buffer.put_nowait("read before the rebalance")
    await on_recovery_completed(object())
    assert list(buffer._queue) == [  # type: ignore[attr-defined]
        "read before the seek took effect",
        "read after the seek",
    ]
    assert app.flow_control.is_active()


async def test_a_resume_elsewhere_still_empties_the_buffers(patched: Any) -> None:
    app, buffer, on_recovery_completed = patched
    await on_recovery_completed(object())
    app.flow_control.suspend()
    buffer.put_nowait("read before a later rebalance")
    app.flow_control.resume()
    assert list(buffer._queue) == []  # type: ignore[attr-defined]
