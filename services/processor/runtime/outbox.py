"""The processor's outputs, gathered per topic partition into record batches.

aiokafka's ``send`` costs 22-24 µs of CPU per record here (a future per
message, the partitioner, the accumulator's lookups); appending to a
``BatchBuilder`` and submitting the builder once it is full, 7-8 µs
(``bench/bench_outbox.py``). A fired timer produces three outputs and a
folded event about two, so this is a tenth of the processor's CPU per timer.

Records are placed exactly as ``send`` would place them (aiokafka's default
partitioner on the key, or the partition given), and keep their order within
a partition. A builder goes to the producer when it is full and, for the
rest, when the agent calls :meth:`Outbox.send_all` at the end of its batch,
before the batch's table writes and so before faust can acknowledge (and
commit) any of its events.

aiokafka used through its public producer API only (``create_batch``,
``send_batch``, ``partitions_for``), plus ``aiokafka.partitioner.murmur2``
to place keyed records as its ``DefaultPartitioner`` does (pinned by
``tests/unit/processor/test_runtime_contract.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka.partitioner import DefaultPartitioner, murmur2

# A list: aiokafka's record builder takes no other sequence.
Headers = list[tuple[str, bytes]]
# Shared by every record without headers (only ever read).
NO_HEADERS: Headers = []


# Key hashes remembered for this many keys: a dispatch's outputs share its key,
# and aiokafka's partitioner hashes in Python (~6 us a key).
HASHES_MAX = 100_000


class Outbox:
    def __init__(self, producer: Any, on_sent: Callable[[asyncio.Future[Any]], None]) -> None:
        # ``producer`` is an AIOKafkaProducer (create_batch, send_batch, partitions_for).
        self._producer = producer
        self._on_sent = on_sent
        self._partitioner = DefaultPartitioner()
        self._partitions: dict[str, list[int]] = {}
        self._hashes: dict[bytes, int] = {}
        self._open: dict[tuple[str, int], Any] = {}
        self._watchers: dict[str, Callable[[int, int], None]] = {}
        # Record batches handed over and not yet known delivered (see ``lost``).
        self._in_flight: set[asyncio.Future[Any]] = set()

    def watch(self, topic: str, written: Callable[[int, int], None]) -> None:
        """Call ``written(partition, offset)`` with the offset of the last
        record of each batch of ``topic`` once the broker has it."""
        self._watchers[topic] = written

    async def add(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: Headers = NO_HEADERS,
    ) -> None:
        if partition is None:
            partition = await self._partition_for(topic, key)
        at = (topic, partition)
        builder = self._open.get(at)
        if builder is None:
            builder = self._open[at] = self._producer.create_batch()
        if builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            # Full: send it, and start the next one with this record (a first
            # record always fits, whatever its size).
            await self._send(topic, partition, builder)
            builder = self._open[at] = self._producer.create_batch()
            builder.append(timestamp=None, key=key, value=value, headers=headers)

    async def send_all(self) -> None:
        """Hand every partly filled batch to the producer."""
        open_batches, self._open = self._open, {}
        for (topic, partition), builder in open_batches.items():
            await self._send(topic, partition, builder)

    async def _send(self, topic: str, partition: int, builder: Any) -> None:
        records = builder.record_count()
        future = await self._producer.send_batch(builder, topic, partition=partition)
        self._in_flight.add(future)
        future.add_done_callback(self._delivered)
        future.add_done_callback(self._on_sent)
        written = self._watchers.get(topic)
        if written is not None:

            def report(done: asyncio.Future[Any]) -> None:
                if not done.cancelled() and done.exception() is None:
                    # The batch's result carries its first record's offset.
                    written(partition, done.result().offset + records - 1)

            future.add_done_callback(report)

    def lost(self) -> BaseException | None:
        """Why a batch handed over was not delivered, if one was not. Reads the
        batches' futures themselves rather than waiting for their callbacks
        (which run a loop turn later): right after the producer's flush, a
        commit must not pass a batch that failed in it."""
        for future in self._in_flight:
            if future.done():
                if future.cancelled():
                    return asyncio.CancelledError("a record batch was cancelled")
                if future.exception() is not None:
                    return future.exception()
        return None

    def _delivered(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            self._in_flight.discard(future)

    async def _partition_for(self, topic: str, key: bytes | None) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            # Learnt once: a topic's partition count is fixed while we run.
            partitions = sorted(await self._producer.partitions_for(topic))
            self._partitions[topic] = partitions
        if key is None:
            return int(self._partitioner(key, partitions, partitions))
        # aiokafka's DefaultPartitioner for a key: murmur2, positive, modulo
        # the partition count, whatever the topic; so the hash is kept per key.
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= HASHES_MAX:
                self._hashes.clear()
            hashed = self._hashes[key] = murmur2(key) & 0x7FFFFFFF
        return partitions[hashed % len(partitions)]
