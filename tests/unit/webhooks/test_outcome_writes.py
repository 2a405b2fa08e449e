"""Outcome events and state records of webhooks concluding together travel in
few writes, each state only after its event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest

from events.commands import DeliverWebhook
from services.producer import Record
from services.webhooks import outcome_writes
from services.webhooks.outcome_writes import OutcomeWrites
from services.webhooks.state import DeliveryState, at

STATES = "unit.webhook-state"
EVENTS = "unit.dispatch.events"


def _state(partition: int = 0) -> DeliveryState:
    command = DeliverWebhook(
        event_id=uuid.uuid4(),
        dispatch_uuid=uuid.uuid4(),
        application_id="app",
        kind="status",
        payload={"status": "delivered"},
    )
    return DeliveryState(
        command=command,
        source_partition=partition,
        source_offset=0,
        phase="delivered",
        next_attempt_at=at(0),
        updated_at=at(0),
    )


def _event(state: DeliveryState) -> Record:
    return (EVENTS, str(state.command.dispatch_uuid).encode(), str(state.webhook_id).encode())


class Broker:
    def __init__(self, failures: int = 0) -> None:
        self.writes: list[list[tuple[str, bytes | None, int | None]]] = []
        self.failures = failures

    async def write(self, records: Sequence[Record], partitions: Sequence[int | None]) -> None:
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise OSError("broker away")
        self.writes.append([(t, k, p) for (t, k, _), p in zip(records, partitions, strict=True)])

    def topics(self) -> list[list[str]]:
        return [[topic for topic, _, _ in write] for write in self.writes]


def _writes(broker: Broker, owned: set[int] | None = None, stop: bool = False) -> OutcomeWrites:
    return OutcomeWrites(
        broker.write,
        state_topic=STATES,
        owned=lambda p: owned is None or p in owned,
        stopping=lambda: stop,
        window_s=0.01,
    )


async def test_events_go_together_then_their_states_together() -> None:
    broker = Broker()
    writes = _writes(broker)
    states = [_state() for _ in range(4)]
    results = await asyncio.gather(*(writes.record(_event(s), s) for s in states))
    assert results == [True] * 4
    # Two writes for four webhooks, not eight; no state before its event.
    assert broker.topics() == [[EVENTS] * 4, [STATES] * 4]
    # A state goes to its command's partition; an event by its key.
    assert [p for _, _, p in broker.writes[0]] == [None] * 4
    assert [p for _, _, p in broker.writes[1]] == [0] * 4


async def test_a_later_event_travels_with_earlier_states() -> None:
    broker = Broker()
    writes = _writes(broker)
    first, second = _state(), _state()
    one = asyncio.create_task(writes.record(_event(first), first))
    await asyncio.sleep(0.015)  # first's event written; its state waits a window
    two = asyncio.create_task(writes.record(_event(second), second))
    assert await one and await two
    assert broker.topics() == [[EVENTS], [EVENTS, STATES], [STATES]]


async def test_no_state_record_for_a_partition_that_moved_away() -> None:
    broker = Broker()
    owned = {0}
    writes = _writes(broker, owned)
    state = _state(partition=0)
    task = asyncio.create_task(writes.record(_event(state), state))
    await asyncio.sleep(0)
    owned.clear()  # revoked before the write
    assert await task
    assert broker.topics() == [[EVENTS]]


async def test_an_attempt_with_no_event_writes_its_state_alone() -> None:
    broker = Broker()
    writes = _writes(broker)
    assert await writes.record(None, _state())
    assert broker.topics() == [[STATES]]


async def test_a_failed_write_is_made_again_with_what_it_carried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outcome_writes, "RETRY_FIRST_S", 0.01)
    broker = Broker(failures=2)
    writes = _writes(broker)
    state = _state()
    assert await writes.record(_event(state), state)
    # The event once, then the state: the failures wrote nothing twice.
    assert broker.topics() == [[EVENTS], [STATES]]


async def test_stopping_while_the_broker_is_away_reports_not_recorded() -> None:
    broker = Broker(failures=1)
    writes = _writes(broker, stop=True)
    state = _state()
    assert await writes.record(_event(state), state) is False
    assert broker.writes == []
