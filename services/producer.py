"""A Kafka producer that survives the broker going away: rebuilt when it fails.

aiokafka's idempotent producer cannot recover from some errors by itself.
After a broker restart under load, batches that expired in its queue leave a
gap in its sequence numbers, and from then on every write fails with
``OutOfOrderSequenceNumber``: a process holding such a producer can never
write again. Here every write has a bound, and a write that fails or times out
retires the producer it used (its unsent batches dropped, not flushed); the
next write starts a fresh one, with a new producer id. Callers retry what
failed: every record they write has a deterministic id (or is keyed state
whose latest value wins), so a record written twice is dropped downstream.

The same class serves the gateway's 503-or-202 appends (no retry: the client
is told) and the workers' must-not-lose writes (retried until they land).

aiokafka internals touched (pinned by ``tests/unit/processor/test_runtime_contract.py``):
``AIOKafkaProducer._closed`` and ``AIOKafkaProducer._sender``, to retire a
producer without flushing what it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.kafka import KafkaSettings, make_producer

log = logging.getLogger(__name__)

# What a failed write may raise: the broker's errors, our bound, the socket's.
WRITE_ERRORS = (KafkaError, TimeoutError, OSError)

Record = tuple[str, bytes | None, bytes | None]  # topic, key, value


class EventWriter(Protocol):
    """What a worker needs of a producer (a fake in unit tests)."""

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        *,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> Any: ...


class RecordsWriter(EventWriter, Protocol):
    """An :class:`EventWriter` that can also write several records in one go
    (one produce request for those whose partitions one broker leads)."""

    async def send_all(self, records: Sequence[Record]) -> Any: ...


class ProducerUnavailable(Exception):
    """Kafka did not acknowledge a write within the bound."""


class RebuildingProducer:
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        timeout_s: float = 10.0,
        factory: Any = None,
        **overrides: Any,
    ) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._overrides = overrides
        # Makes a fresh (unstarted) aiokafka producer; tests pass their own.
        self._factory = factory or (lambda: make_producer(settings, **overrides))
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self.rebuilds = 0

    async def start(self) -> None:
        """Connect now, best effort: a process may start while Kafka is away."""
        try:
            await asyncio.wait_for(self._current(), self._timeout_s)
        except WRITE_ERRORS as exc:
            log.warning("Kafka not reachable at start, will retry on demand: %r", exc)

    async def _current(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = self._factory()
                try:
                    await producer.start()
                except BaseException:
                    await abandon(producer)
                    raise
                self._producer = producer
            return self._producer

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        *,
        partition: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        # One record: what send_all does, without its list, loop and gather
        # (a third of this write's CPU; measured in bench/RESULTS.md, Gateway).
        producer: AIOKafkaProducer | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                producer = self._producer or await self._current()
                sent = await producer.send(
                    topic,
                    value,
                    key=key,
                    partition=partition,
                    headers=list(headers) if headers else None,
                )
                await sent
        except WRITE_ERRORS as exc:
            await self._retire(producer, exc)
            raise ProducerUnavailable(repr(exc)) from exc

    async def send_all(
        self,
        records: Sequence[Record],
        *,
        partition: int | None = None,
        partitions: Sequence[int | None] | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> None:
        """Write every record, acknowledged, or raise :class:`ProducerUnavailable`
        (and retire the producer) within the bound."""
        if not records:
            return
        producer: AIOKafkaProducer | None = None
        try:
            async with asyncio.timeout(self._timeout_s):
                producer = await self._current()
                futures = []
                for n, (topic, key, value) in enumerate(records):
                    part = partitions[n] if partitions is not None else partition
                    futures.append(
                        await producer.send(
                            topic,
                            value,
                            key=key,
                            partition=part,
                            headers=list(headers) if headers else None,
                        )
                    )
                await asyncio.gather(*futures)
        except WRITE_ERRORS as exc:
            await self._retire(producer, exc)
            raise ProducerUnavailable(repr(exc)) from exc

    async def _retire(self, producer: AIOKafkaProducer | None, exc: BaseException) -> None:
        # Only the producer this write used: a newer one may be healthy.
        if producer is not None and producer is self._producer:
            self._producer = None
            self.rebuilds += 1
            log.warning("Kafka write failed (%r); the producer will be rebuilt", exc)
            await abandon(producer)

    async def reachable(self) -> bool:
        """True when the producer holds fresh cluster metadata from a broker."""
        try:
            async with asyncio.timeout(min(self._timeout_s, 2.0)):
                producer = await self._current()
                await producer.client.fetch_all_metadata()
                return True
        except WRITE_ERRORS:
            return False

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            # A clean stop flushes what is in flight; bounded, then abandoned.
            await asyncio.wait_for(producer.stop(), self._timeout_s)
        except WRITE_ERRORS:
            await abandon(producer)


async def abandon(producer: AIOKafkaProducer) -> None:
    """Close a producer *without* flushing: its unsent batches are dropped.

    ``AIOKafkaProducer.stop`` waits for every pending batch, which an
    idempotent producer retries forever; cancelling the sender task is the only
    way to make sure a record whose write was reported failed is not written
    behind the caller's back later (the gateway answered 503 for it).
    """
    producer._closed = True
    sender = getattr(producer, "_sender", None)
    if sender is not None:
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await sender.close()
    with contextlib.suppress(Exception):
        await producer.client.close()


async def until_written(
    write: Any, *, what: str, stop: asyncio.Event | None = None, max_delay_s: float = 10.0
) -> bool:
    """Retry ``write()`` (a coroutine function) until it succeeds, with backoff:
    for writes that must never be lost. False only if ``stop`` was set first."""
    delay = 0.2
    while True:
        try:
            await write()
            return True
        except (ProducerUnavailable, *WRITE_ERRORS) as exc:
            log.warning("could not write %s (%s); retrying in %.1f s", what, exc, delay)
        if stop is not None and stop.is_set():
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay_s)
