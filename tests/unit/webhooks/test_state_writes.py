"""State records of webhooks concluding together travel in one write."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from events.commands import DeliverWebhook
from services.webhooks.state import DeliveryState, at
from services.webhooks.state_writes import StateWrites


def _state(webhook_id: uuid.UUID | None = None, phase: str = "delivered") -> DeliveryState:
    command = DeliverWebhook(
        event_id=webhook_id or uuid.uuid4(),
        dispatch_uuid=uuid.uuid4(),
        application_id="app",
        kind="status",
        payload={"status": "delivered"},
    )
    return DeliveryState(
        command=command,
        source_partition=0,
        source_offset=0,
        phase=phase,
        next_attempt_at=at(0),
        updated_at=at(0),
    )


class Writes:
    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[DeliveryState]] = []
        self.failures = failures

    async def __call__(self, states: list[DeliveryState]) -> None:
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise OSError("broker away")
        self.batches.append(states)


async def test_states_concluding_within_the_window_are_one_write() -> None:
    writes = Writes()
    batcher = StateWrites(writes, window_s=0.01)
    states = [_state() for _ in range(5)]
    await asyncio.gather(*(batcher.record(s) for s in states))
    assert [len(b) for b in writes.batches] == [5]
    # A state recorded after that batch went out makes the next one.
    await batcher.record(_state())
    assert [len(b) for b in writes.batches] == [5, 1]


async def test_a_later_state_of_a_webhook_replaces_the_earlier_one_in_its_batch() -> None:
    writes = Writes()
    batcher = StateWrites(writes, window_s=0.01)
    webhook_id = uuid.uuid4()
    await asyncio.gather(
        batcher.record(_state(webhook_id, "pending")),
        batcher.record(_state(webhook_id, "delivered")),
    )
    ((only,),) = writes.batches
    assert only.phase == "delivered"


async def test_a_failed_batch_fails_every_caller_and_a_retry_writes_it() -> None:
    writes = Writes(failures=1)
    batcher = StateWrites(writes, window_s=0.01)
    states = [_state(), _state()]
    results = await asyncio.gather(*(batcher.record(s) for s in states), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    assert writes.batches == []
    await asyncio.gather(*(batcher.record(s) for s in states))
    assert [len(b) for b in writes.batches] == [2]


async def test_one_caller_cancelled_does_not_cancel_the_batch_for_the_others() -> None:
    writes = Writes()
    batcher = StateWrites(writes, window_s=0.02)
    first = asyncio.create_task(batcher.record(_state()))
    second = asyncio.create_task(batcher.record(_state()))
    await asyncio.sleep(0.005)
    first.cancel()
    await second
    with pytest.raises(asyncio.CancelledError):
        await first
    assert [len(b) for b in writes.batches] == [2]
