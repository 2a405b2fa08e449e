"""Follows ``dispatch.events`` into the projection store.

It reads every partition itself (no consumer group) from the offsets the store
records, folds each batch into the views, and writes views, history and the
new offsets in one transaction. Several projectors (one per gateway host, say)
each keep a full copy; replay uses the same code with a fresh store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from events.codec import UndecodableMessage, decode_event
from events.dispatch import DispatchEvent, MessageSubmitted
from projections import view as views
from projections.store import Batch, HistoryRow, ProjectionStore
from services.kafka import FETCH_MAX_WAIT_MS, KafkaSettings
from services.kafka_security import client_options

log = logging.getLogger(__name__)


def fold_records(store: ProjectionStore, records: list[ConsumerRecord]) -> Batch:
    """Fold a batch of records into a :class:`Batch` (views read from the store as needed)."""
    batch = Batch(views={}, history=[], messages={}, positions={})
    for record in records:
        batch.positions[record.partition] = record.offset + 1
        try:
            event = decode_event(record.value)
        except UndecodableMessage as exc:
            log.warning("p%s@%s: not projected: %s", record.partition, record.offset, exc)
            continue
        if not isinstance(event, DispatchEvent):
            continue  # ticks are about time, not about one dispatch
        uuid = str(event.dispatch_uuid)
        current = batch.views.get(uuid) or store.view(uuid)
        updated = views.apply(current, event)
        if updated is not None:
            batch.views[uuid] = updated
        batch.history.append(
            HistoryRow(
                partition=record.partition,
                offset=record.offset,
                dispatch_uuid=uuid,
                type=event.type,
                occurred_at=event.occurred_at.isoformat(),
                event=record.value,
            )
        )
        if isinstance(event, MessageSubmitted):
            batch.messages[event.message_uuid] = (uuid, event.step)
    return batch


class Projector:
    def __init__(
        self,
        settings: KafkaSettings,
        store: ProjectionStore,
        *,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._on_batch = on_batch
        self._consumer: AIOKafkaConsumer | None = None
        self._end_offsets: dict[int, int] = {}
        self.caught_up = asyncio.Event()

    async def start(self) -> list[TopicPartition]:
        topic = self._settings.topics.events
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            **client_options(),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=2000,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        await self._consumer.start()
        tps = [TopicPartition(topic, p) for p in range(self._settings.partitions)]
        self._consumer.assign(tps)
        positions = self._store.positions()
        for tp in tps:
            if tp.partition in positions:
                self._consumer.seek(tp, positions[tp.partition])
            else:
                await self._consumer.seek_to_beginning(tp)
        ends = await self._consumer.end_offsets(tps)
        self._end_offsets = {tp.partition: offset for tp, offset in ends.items()}
        self._check_caught_up()
        return tps

    async def run(self, *, stop_at: dict[int, int] | None = None) -> None:
        """Project until cancelled, or until every partition reached ``stop_at``."""
        assert self._consumer is not None, "start() first"
        while True:
            if stop_at is not None and self._reached(stop_at):
                return
            batches = await self._consumer.getmany(timeout_ms=200)
            records = [r for rs in batches.values() for r in rs]
            if stop_at is not None:
                records = [r for r in records if r.offset < stop_at.get(r.partition, 0)]
            if records:
                records.sort(key=lambda r: (r.partition, r.offset))
                self._store.write(fold_records(self._store, records))
                if self._on_batch is not None:
                    self._on_batch(len(records))
            self._check_caught_up()

    def _reached(self, stop_at: dict[int, int]) -> bool:
        positions = self._store.positions()
        return all(positions.get(p, 0) >= offset for p, offset in stop_at.items() if offset > 0)

    def _check_caught_up(self) -> None:
        if not self.caught_up.is_set() and self._reached(self._end_offsets):
            self.caught_up.set()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
