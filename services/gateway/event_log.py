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

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from prometheus_client import Histogram

from events.codec import encode
from events.dispatch import DispatchEvent
from services.kafka import KafkaSettings, make_producer

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
    def __init__(
        self, settings: KafkaSettings, *, timeout_s: float = 5.0, linger_ms: int = 5
    ) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._linger_ms = linger_ms
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Connect now (best effort): a gateway may start while Kafka is away."""
        try:
            await asyncio.wait_for(self._ensure_producer(), self._timeout_s)
        except (TimeoutError, KafkaError, OSError) as exc:
            log.warning("Kafka not reachable at start, will retry on demand: %r", exc)

    async def _ensure_producer(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = make_producer(self._settings, linger_ms=self._linger_ms)
                try:
                    await producer.start()
                except BaseException:
                    await _abandon(producer)
                    raise
                self._producer = producer
            return self._producer

    async def append(self, event: DispatchEvent) -> None:
        started = time.perf_counter()
        producer: AIOKafkaProducer | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                producer = await self._ensure_producer()
                await producer.send_and_wait(
                    self._settings.topics.events,
                    encode(event),
                    key=str(event.dispatch_uuid).encode(),
                )
        except (TimeoutError, KafkaError, OSError) as exc:
            # Only the producer this write used: a newer one may be healthy.
            if producer is not None and producer is self._producer:
                self._producer = None
                await _abandon(producer)
            raise EventLogUnavailable(repr(exc)) from exc
        PRODUCE_SECONDS.observe(time.perf_counter() - started)

    async def reachable(self) -> bool:
        """True when the producer holds fresh cluster metadata from a broker."""
        try:
            async with asyncio.timeout(min(self._timeout_s, 2.0)):
                producer = await self._ensure_producer()
                await producer.client.fetch_all_metadata()
                return True
        except (TimeoutError, KafkaError, OSError):
            return False

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            # A clean stop flushes what is in flight; bounded, then abandoned.
            await asyncio.wait_for(producer.stop(), self._timeout_s)
        except (TimeoutError, KafkaError, OSError):
            await _abandon(producer)


async def _abandon(producer: AIOKafkaProducer) -> None:
    """Close a producer *without* flushing: its unsent batches are dropped.

    ``AIOKafkaProducer.stop`` waits for every pending batch, which an
    idempotent producer retries forever; cancelling the sender task is the only
    way to make sure a record we answered 503 for is never written later.
    """
    producer._closed = True
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await sender.close()
    with contextlib.suppress(Exception):
        await producer.client.close()
