"""Appending to ``dispatch.events``: the only write the gateway makes.

``append`` returns only once Kafka acknowledged the record (acks=all,
idempotent producer), or raises :class:`EventLogUnavailable` within the
configured bound. An idempotent aiokafka producer never gives up on a batch by
itself: left alone it would deliver a record whose client already got a 503 once
the broker comes back. So when a write times out the producer is abandoned
(its pending batches dropped, not flushed) and a fresh one is started on the
next write.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from prometheus_client import Histogram

from events.codec import encode
from events.dispatch import DispatchEvent
from services.kafka import KafkaSettings
from services.producer import ProducerUnavailable, RebuildingProducer

log = logging.getLogger(__name__)

PRODUCE_SECONDS = Histogram(
    "dispatch_gateway_produce_seconds",
    "Time from handing an event to Kafka to its acknowledgement (acks=all).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class EventLogUnavailable(Exception):
    """Kafka did not acknowledge the write within the bound."""


class EventLog(Protocol):
    async def append(self, event: DispatchEvent) -> None: ...

    async def reachable(self) -> bool: ...


class KafkaEventLog:
    """``dispatch.events`` through a producer that is rebuilt when it fails
    (``services.producer``): a write that timed out is dropped, never flushed
    later behind a 503."""

    def __init__(
        self, settings: KafkaSettings, *, timeout_s: float = 5.0, linger_ms: int = 5
    ) -> None:
        self._settings = settings
        self._producer = RebuildingProducer(settings, timeout_s=timeout_s, linger_ms=linger_ms)

    async def start(self) -> None:
        await self._producer.start()

    async def append(self, event: DispatchEvent) -> None:
        started = time.perf_counter()
        try:
            await self._producer.send_and_wait(
                self._settings.topics.events,
                encode(event),
                key=str(event.dispatch_uuid).encode(),
            )
        except ProducerUnavailable as exc:
            raise EventLogUnavailable(str(exc)) from exc
        PRODUCE_SECONDS.observe(time.perf_counter() - started)

    async def reachable(self) -> bool:
        return await self._producer.reachable()

    async def stop(self) -> None:
        await self._producer.stop()
