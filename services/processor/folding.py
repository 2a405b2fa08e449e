"""One batch of ``dispatch.events`` folded: decode, decide, produce, write.

Between the faust runtime (``runtime/``: what a batch is, which event is
current, where outputs and table writes go) and the engine (``engine.py``: one
event in, outputs out). Every record is decided as soon as it is read; its
outputs go into record batches per topic partition (the outbox), handed to the
producer when full and at the end of the batch, and table writes go to a
write-back cache (``writeback.py``) that reaches the tables once per key at
the end of the batch, after the outputs. The caller acknowledges the batch's
offsets only after that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from aiokafka import AIOKafkaProducer
from faust.types import EventT

from events.base import uuid_text
from events.codec import UndecodableMessage, decode_event, encode
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import Tick
from services.kafka import track_topics
from services.processor import metrics, timers
from services.processor.config import TABLES, ProcessorConfig
from services.processor.engine import Result, Stores, process
from services.processor.runtime.changelog import TableWriter, table_keys, table_reader
from services.processor.runtime.context import current
from services.processor.runtime.intake import ORIGIN_HEADER, FetchedRecords
from services.processor.runtime.outbox import Outbox
from services.processor.tick_schedule import TickSchedule
from services.processor.writeback import WriteBack

log = logging.getLogger("dispatch.processor")
# The header marking the processor's own decisions (shared: only ever read).
OWN_DECISION = [ORIGIN_HEADER]


class Fold:
    def __init__(
        self,
        config: ProcessorConfig,
        tables: list[Any],
        is_active: Callable[[int], bool],
        on_lost_output: Callable[[Any], None],
    ) -> None:
        self._config = config
        self._topics = config.kafka.topics
        self._tables = tables
        self._is_active = is_active
        self._on_lost_output = on_lost_output
        self.caches = [WriteBack(table_reader(t)) for t in tables]
        self.stores = Stores(
            buckets=self.caches[0], cursors=self.caches[1], dispatches=self.caches[2]
        )
        # The seconds each folded partition has deadlines filed in: what the ticker ticks.
        self.tick_schedule = TickSchedule()
        # Events folded per type in the current batch, for the metric.
        self.processed: dict[str, int] = {}
        # Per partition, the highest offset folded in this consumer generation.
        self._folded_up_to: dict[int, int] = {}
        # Made with the producer, at the first batch (``start``).
        self._outbox: Outbox | None = None
        self._writers: list[TableWriter] = []
        # Whether a command keyed by its dispatch goes to the dispatch's own
        # partition on dispatch.send and dispatch.webhooks: when they have as
        # many partitions as dispatch.events, that is where the default
        # partitioner (murmur2 of the same key) puts it, without hashing the
        # key in Python for every command.
        self._aligned = {self._topics.send: False, self._topics.webhooks: False}

    async def start(self, producer: AIOKafkaProducer) -> None:
        """Outputs go to ``producer`` (faust's own, which its commit flushes)."""
        topics = self._topics
        # Outputs are handed to the producer before the batch's changelog
        # writes: without this, a refresh for a changelog topic could strand
        # an output waiting for its linger (see ``track_topics``).
        written = [topics.events, topics.send, topics.webhooks, topics.dead_letters]
        written += [self._config.changelog_topic(name) for name in TABLES]
        await track_topics(producer, written)
        events_partitions = await producer.partitions_for(topics.events)
        for topic in self._aligned:
            self._aligned[topic] = await producer.partitions_for(topic) == events_partitions
        self._outbox = Outbox(producer, self._on_lost_output)
        self._writers = [TableWriter(t, self._outbox) for t in self._tables]

    def outputs_lost(self) -> BaseException | None:
        """Why an output handed to the producer was not delivered, if one was not."""
        return self._outbox.lost() if self._outbox is not None else None

    def new_generation(self, generation: int) -> None:
        """A rebalance: a partition may have had another owner, or been
        restored, since the caches kept what this worker wrote."""
        self.tick_schedule.generation(generation)
        for cache in self.caches:
            cache.forget()
        self._folded_up_to.clear()

    async def fold(self, batch: Sequence[EventT]) -> int:
        """Fold a batch and hand its outputs and table writes to Kafka; how many
        records it had."""
        outbox = cast(Outbox, self._outbox)
        folded = 0
        for event in batch:
            folded += await self._fold_fetch(event)
        # Outputs first, then the table writes (changelog records).
        await outbox.send_all()
        await self._write_tables(batch)
        await outbox.send_all()
        return folded

    async def _fold_fetch(self, event: EventT) -> int:
        """Fold the records of one ``FetchedRecords`` event."""
        fetched = cast(FetchedRecords, event.value)
        partition = event.message.partition
        active = self._is_active(partition)
        for cache in self.caches:
            cache.partition = partition
        if active and not self.tick_schedule.known(partition):
            self._learn_deadlines(partition)
        # faust resumes the flow while a new assignment recovers, then seeks
        # back to the committed offsets: what was folded in between is read
        # again in the same generation. Folded once (a batch either completes,
        # outputs and table writes in Kafka, or the process exits).
        seen = self._folded_up_to.get(partition, -1)
        with current(event):
            for record in fetched.records:
                if record.offset > seen:
                    await self._fold_record(record.value, partition, record.offset, active)
        if fetched.records:
            self._folded_up_to[partition] = max(seen, fetched.records[-1].offset)
        return len(fetched.records)

    def _learn_deadlines(self, partition: int) -> None:
        # First fold of the partition in this generation: its index as stored
        # (the caches hold no writes between batches).
        seconds = (timers.filed_second(key) for key in table_keys(self._tables[0], partition))
        filed = [s for s in seconds if s is not None]
        self.tick_schedule.learn(partition, filed)
        log.info(
            "partition %d: deadlines filed in %d seconds from %s",
            partition,
            len(filed),
            min(filed, default=None),
        )

    async def _fold_record(self, value: bytes, partition: int, offset: int, active: bool) -> None:
        try:
            decoded = decode_event(value)
        except UndecodableMessage as exc:
            await self._dead_letter(value, str(exc), partition, offset)
            return
        if isinstance(decoded, Tick) and not active:
            return  # a standby copy: its active owner fires these timers
        try:
            result = process(self.stores, partition, offset, decoded, self._config.policy)
        except Exception as exc:  # a bug must not stall the partition behind it
            log.exception("processing failed at %s@%d", partition, offset)
            await self._dead_letter(value, f"processing failed: {exc!r}", partition, offset)
            return
        self.processed[decoded.type] = self.processed.get(decoded.type, 0) + 1
        if result.rejected is not None:
            await self._dead_letter(value, result.rejected, partition, offset)
            return
        if result.dropped_status:
            metrics.STATUSES_DROPPED.inc()
        for reason, entry in result.failed_entries:
            log.error("timer entry %s failed at %s@%d: %s", entry, partition, offset, reason)
            await self._dead_letter(entry, reason, partition, offset)
        if isinstance(decoded, Tick):
            # What the tick drained leaves the schedule (the cursor's lower bound).
            cursor = timers.load_cursor(self.stores.cursors, partition)
            self.tick_schedule.passed(partition, cursor.next_second)
            wall = time.time()
            for deadline in result.fired:
                metrics.TIMER_LATENESS.observe((decoded.now - deadline).total_seconds())
                metrics.TIMER_FIRE_DELAY.observe(wall - deadline.timestamp())
        await self._produce(result, partition)

    async def _produce(self, result: Result, partition: int) -> None:
        topics, aligned = self._topics, self._aligned
        add = cast(Outbox, self._outbox).add
        # A result's outputs are mostly about one dispatch: its key made once.
        last: tuple[Any, bytes | None] = (None, None)
        for output in result.outputs:
            dispatch = getattr(output, "dispatch_uuid", None)
            if dispatch is not last[0]:
                last = (dispatch, uuid_text(dispatch).encode() if dispatch is not None else None)
            key = last[1]
            if isinstance(output, SendMessage):
                home = partition if aligned[topics.send] else None
                await add(topics.send, key, encode(output), home)
            elif isinstance(output, DeliverWebhook):
                home = partition if aligned[topics.webhooks] else None
                await add(topics.webhooks, key, encode(output), home)
            else:
                # Decisions stay on the dispatch's own partition, next to its history.
                await add(topics.events, key, encode(output), partition, OWN_DECISION)

    async def _dead_letter(self, value: bytes, reason: str, partition: int, offset: int) -> None:
        events = self._topics.events
        metrics.DEAD_LETTERS.inc()
        log.warning("dead-lettered %s[%d]@%d: %s", events, partition, offset, reason)
        headers = [
            ("reason", reason.encode()[:4000]),
            ("source", f"{events}:{partition}:{offset}".encode()),
        ]
        await cast(Outbox, self._outbox).add(self._topics.dead_letters, None, value, None, headers)

    async def _write_tables(self, batch: Sequence[EventT]) -> None:
        """Write the batch's table changes, one partition at a time, each with an
        event of that partition as the current one."""
        by_partition = {event.message.partition: event for event in batch}
        for cache, writer in zip(self.caches, self._writers, strict=True):
            for partition in cache.partitions():
                changes = cache.take(partition)
                if cache is self.caches[0]:  # the deadline index: new seconds to tick at
                    for key, value in changes:
                        second = timers.filed_second(key) if value is not None else None
                        if second is not None:
                            self.tick_schedule.filed(partition, second)
                with current(by_partition[partition]):
                    await writer.write(partition, changes)
