"""A producer left failing every write by a broker restart is replaced."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from events.topics import Topics
from services.kafka import KafkaSettings
from services.producer import ProducerUnavailable, RebuildingProducer, until_written

SETTINGS = KafkaSettings(topics=Topics.from_prefix("unit."))


class WedgedAfterRestart:
    """Plays aiokafka's idempotent producer after expired batches left a
    sequence gap: every write fails, for good."""

    def __init__(self, wedged: bool) -> None:
        self.wedged = wedged
        self.written: list[bytes | None] = []
        self._closed = False
        self.client = self

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, topic: str, value: bytes | None, **_: Any) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.wedged:
            future.set_exception(OutOfOrderSequenceNumber())
        else:
            self.written.append(value)
            future.set_result(None)
        return future


async def test_a_wedged_producer_is_retired_and_the_next_write_uses_a_fresh_one() -> None:
    made: list[WedgedAfterRestart] = []

    def factory() -> WedgedAfterRestart:
        made.append(WedgedAfterRestart(wedged=not made))  # only the first is wedged
        return made[-1]

    producer = RebuildingProducer(SETTINGS, timeout_s=1.0, factory=factory)
    with pytest.raises(ProducerUnavailable, match="OutOfOrderSequenceNumber"):
        await producer.send_and_wait("t", b"first")
    await producer.send_and_wait("t", b"again")
    assert len(made) == 2 and made[1].written == [b"again"]
    assert producer.rebuilds == 1


async def test_until_written_retries_through_a_rebuild() -> None:
    made: list[WedgedAfterRestart] = []

    def factory() -> WedgedAfterRestart:
        made.append(WedgedAfterRestart(wedged=len(made) < 2))
        return made[-1]

    producer = RebuildingProducer(SETTINGS, timeout_s=1.0, factory=factory)
    assert await until_written(lambda: producer.send_and_wait("t", b"must land"), what="x")
    assert made[-1].written == [b"must land"] and producer.rebuilds == 2
