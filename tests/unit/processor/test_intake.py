"""How events reach the fold agent: the processor's hooks into faust's
consumer take effect (each reaches into faust, so each is pinned here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from services.processor.app import build_app
from services.processor.config import ProcessorConfig
from services.processor.runtime import intake
from services.processor.runtime.intake import (
    ORIGIN_HEADER,
    EventsTopic,
    FetchedRecords,
    acknowledge_fetched,
)

TOPIC = "dispatch.events"  # ProcessorConfig's default events topic
EVENTS = TP(TOPIC, 0)


def record(offset: int, echo: bool = False, topic: str = TOPIC) -> ConsumerRecord[Any, Any]:
    headers = [ORIGIN_HEADER] if echo else []
    value = f"event {offset}".encode()
    return ConsumerRecord(topic, 0, offset, 1000 + offset, 0, None, value, None, 0, 10, headers)


def events_topic(app: Any) -> EventsTopic:
    (agent,) = app.agents.values()
    assert isinstance(agent.channel, EventsTopic)
    return agent.channel


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    app = build_app(ProcessorConfig(store="memory://", data_dir=tmp_path))
    yield app
    app.consumer._thread.thread_loop.close()  # made for a thread that never ran


def fetch_returns(monkeypatch: pytest.MonkeyPatch, records: dict[TP, list[Any]]) -> None:
    async def fetched(consumer: Any, active: Any, timeout: float) -> dict[TP, list[Any]]:
        return records

    monkeypatch.setattr(intake, "_getmany", fetched)


async def test_the_worker_consumer_fetches_with_the_configured_wait(tmp_path: Path) -> None:
    # faust itself passes 1.5 s, which stalls intake behind empty partitions.
    app = build_app(ProcessorConfig(store="memory://", data_dir=tmp_path, fetch_max_wait_ms=123))
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 123
    finally:
        await consumer.stop()
        thread.thread_loop.close()  # made for the thread that never ran


async def test_a_fetch_becomes_one_message_per_partition_without_own_decisions(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    changelog = TP("some-changelog", 0)
    fetch_returns(
        monkeypatch,
        {EVENTS: [record(5), record(6, echo=True), record(7)], changelog: [record(3, topic="c")]},
    )
    records = await app.consumer._getmany(None, 0.1)
    (gathered,) = records[EVENTS]
    assert isinstance(gathered, FetchedRecords)
    assert [r.offset for r in gathered.records] == [5, 7]
    assert (gathered.first_offset, gathered.offset, gathered.timestamp) == (5, 7, 1007)
    # Other topics (the changelogs faust restores tables from) pass unchanged.
    assert [r.offset for r in records[changelog]] == [3]
    # faust turns it into one message whose value carries the records.
    faust_message = app.consumer._to_message(EVENTS, gathered)
    event = await events_topic(app).decode(faust_message, propagate=True)
    assert event.value is gathered and event.message.offset == 7


async def test_commit_passes_a_fetch_only_once_the_agent_acknowledged_it(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = app.consumer
    app.topics._acking_topics.add(TOPIC)  # as it is once the agent subscribes
    consumer._committed_offset[EVENTS] = 10  # read from offset 10 on
    consumer._read_offset[EVENTS] = 10
    fetch_returns(monkeypatch, {EVENTS: [record(offset) for offset in range(10, 15)]})
    (gathered,) = (await consumer._getmany(None, 0.1))[EVENTS]
    faust_message = consumer._to_message(EVENTS, gathered)
    # faust's drain loop files no gap it could commit over before the last offset.
    assert faust_message.offset - consumer._read_offset[EVENTS] <= 1
    # faust acknowledging the message alone commits nothing: 10..13 are not acknowledged.
    consumer.ack(faust_message)
    assert consumer._new_offset(EVENTS) is None
    # Once the agent has folded and written the batch, the whole fetch commits.
    acknowledge_fetched(consumer, faust_message)
    assert consumer._new_offset(EVENTS) == 15


async def test_records_already_read_are_not_handed_over_again(
    app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.consumer._read_offset[EVENTS] = 12  # as faust drops them too
    fetch_returns(monkeypatch, {EVENTS: [record(offset) for offset in range(10, 15)]})
    (gathered,) = (await app.consumer._getmany(None, 0.1))[EVENTS]
    assert [r.offset for r in gathered.records] == [12, 13, 14]
