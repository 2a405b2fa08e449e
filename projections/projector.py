"""Follows ``dispatch.events`` into the projection store.

Alone (``group_id=None``: a SQLite store, or a replay) a projector reads every
partition itself. On a shared store several projectors form one consumer
group and each follows the partitions the group gives it. Either way the
offsets live in the store, written in the same transaction as the rows: a
projector starts each partition it is given at the store's offset, and a batch
it read before losing the partition is refused by the store
(:class:`StalePositions`) rather than applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition

from events.codec import LogEvent, UndecodableMessage, decode_event
from events.dispatch import (
    DispatchEvent,
    MessageStatusReceived,
    MessageSubmitted,
    WorkflowRequested,
)
from projections import view as views
from projections.store import Batch, HistoryRow, ProjectionStore, StalePositions
from projections.view import View
from services.dead_letters import DeadLetters
from services.kafka import FETCH_MAX_WAIT_MS, KafkaSettings
from services.kafka_security import client_options

log = logging.getLogger(__name__)

Decoded = tuple[ConsumerRecord, LogEvent | None]
# A dispatch's records in a batch, with their events.
Folded = list[tuple[ConsumerRecord, LogEvent]]


# Records the projector could not read or fold, with why: for the dead-letter topic.
Rejected = list[tuple[ConsumerRecord, str]]


def decode_records(
    records: list[ConsumerRecord], rejected: Rejected | None = None
) -> list[Decoded]:
    decoded: list[Decoded] = []
    for record in records:
        try:
            decoded.append((record, decode_event(record.value)))
        except UndecodableMessage as exc:
            log.warning("p%s@%s: not projected: %s", record.partition, record.offset, exc)
            decoded.append((record, None))
            if rejected is not None:
                rejected.append((record, str(exc)))
    return decoded


def fold_records(
    decoded: list[Decoded], stored: dict[str, View], rejected: Rejected | None = None
) -> Batch:
    """Fold a batch of records into a :class:`Batch`, starting from the views
    ``stored`` (the store's current views of the batch's dispatches)."""
    batch = Batch(views={}, history=[], messages={}, positions={})
    touched: dict[str, Folded] = {}
    for record, event in decoded:
        batch.positions[record.partition] = record.offset + 1
        if not isinstance(event, DispatchEvent):
            continue  # undecodable, or a tick: about time, not about one dispatch
        uuid = str(event.dispatch_uuid)
        touched.setdefault(uuid, []).append((record, event))
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
        elif isinstance(event, MessageStatusReceived) and event.step is not None:
            # Routed by its client_ref: the message of a step whose send had
            # an unknown outcome is known from here on.
            batch.messages.setdefault(event.message_uuid, (uuid, event.step))
    for uuid, events in touched.items():
        view = _fold_dispatch(stored.get(uuid), events, rejected)
        if view is not None:
            batch.views[uuid] = view
    return batch


def _fold_dispatch(view: View | None, events: Folded, rejected: Rejected | None) -> View | None:
    """The view of one dispatch after the batch's events of it: unpacked once
    and rendered once, not at every event (catching up went 1.5-1.7 times as
    fast for it; bench/RESULTS.md, "The projector renders a view once a
    batch"). The stored view is left as it was: it is copied when unpacked."""
    try:
        unpacked = views.unpack(view) if view is not None else None
        for _, event in events:
            if unpacked is not None:
                views.fold_into(unpacked, event)
            elif isinstance(event, WorkflowRequested):
                unpacked = views.requested(event)
            # else: an event of a dispatch whose request we never saw
        return views.pack_to_store(unpacked) if unpacked is not None else None
    except Exception:
        return _fold_one_by_one(view, events, rejected)


def _fold_one_by_one(view: View | None, events: Folded, rejected: Rejected | None) -> View | None:
    """The same, an event at a time, leaving out the events the view cannot take.

    One event the view cannot take must not stop the read side (a restart
    would read it again, and stop again): it stays in the history, and the
    view goes on without it."""
    folded = None
    for record, event in events:
        try:
            updated = views.apply(view, event)
        except Exception as exc:
            log.exception("p%s@%s: not folded into the view", record.partition, record.offset)
            updated = None
            if rejected is not None:
                rejected.append((record, f"not folded into the view: {exc!r}"))
        if updated is not None:
            view = folded = updated
    return folded


async def project(
    store: ProjectionStore, records: list[ConsumerRecord], rejected: Rejected | None = None
) -> Batch:
    decoded = decode_records(records, rejected)
    uuids = {str(e.dispatch_uuid) for _, e in decoded if isinstance(e, DispatchEvent)}
    stored = await store.views(uuids)
    for uuid, view in stored.items():
        if views.PRIVATE not in view:
            # Written before the view folded through the rules: folded again
            # from the dispatch's history, once, as it is next touched.
            history = []
            for row in await store.history(uuid):
                with contextlib.suppress(UndecodableMessage):  # refused when written, too
                    history.append(decode_event(row.event))
            stored[uuid] = views.refold(history) or view
    return fold_records(decoded, stored, rejected)


class Projector:
    def __init__(
        self,
        settings: KafkaSettings,
        store: ProjectionStore,
        *,
        group_id: str | None = None,
        on_batch: Callable[[int], None] | None = None,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._group_id = group_id
        # Where records it cannot read or fold go (None: only logged, as in a replay).
        self._dead_letters = dead_letters
        self._on_batch = on_batch
        self._consumer: AIOKafkaConsumer | None = None
        self._end_offsets: dict[int, int] = {}
        # The partitions this projector follows now, and the offset the store
        # is at for each (None: never written). A write claims exactly these.
        self._expected: dict[int, int | None] = {}
        # Held while a batch is folded and written: a revocation waits for it.
        self._writing = asyncio.Lock()
        self.caught_up = asyncio.Event()

    async def start(self) -> None:
        topic = self._settings.topics.events
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            **client_options(),
            group_id=self._group_id,
            enable_auto_commit=False,  # the offsets are in the store
            auto_offset_reset="earliest",
            max_poll_records=2000,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        await self._consumer.start()
        tps = [TopicPartition(topic, p) for p in range(self._settings.partitions)]
        ends = await self._consumer.end_offsets(tps)
        self._end_offsets = {tp.partition: offset for tp, offset in ends.items()}
        if self._group_id is None:
            self._consumer.assign(tps)
            await self._seek_to_store(tps)
        else:
            self._consumer.subscribe([topic], listener=_FollowAssignment(self))
        await self._check_caught_up()

    async def run(self, *, stop_at: dict[int, int] | None = None) -> None:
        """Project until cancelled, or until every partition reached ``stop_at``."""
        assert self._consumer is not None, "start() first"
        while True:
            if stop_at is not None and await self._reached(stop_at):
                return
            batches = await self._consumer.getmany(timeout_ms=1000)
            records = [r for rs in batches.values() for r in rs]
            if stop_at is not None:
                records = [r for r in records if r.offset < stop_at.get(r.partition, 0)]
            if records:
                await self._apply(records)
            await self._check_caught_up()

    async def _apply(self, records: list[ConsumerRecord]) -> None:
        async with self._writing:
            # Records fetched before a rebalance: of a partition no longer ours,
            # or of one given back to us and since re-positioned at the store's
            # offset (those below it are in the store already).
            records = [r for r in records if self._ahead_of_store(r)]
            if not records:
                return
            records.sort(key=lambda r: (r.partition, r.offset))
            rejected: Rejected = []
            batch = await project(self._store, records, rejected)
            if self._dead_letters is not None:
                # Parked before the batch's offsets are written: a crash in
                # between parks them again, never not at all.
                for record, reason in rejected:
                    await self._dead_letters.park(record, reason)
            expected = {p: self._expected[p] for p in batch.positions}
            try:
                await self._store.write(batch, expected)
            except StalePositions as stale:
                log.warning("%s; following them from the store's offsets", stale)
                assert self._consumer is not None
                topic = self._settings.topics.events
                await self._seek_to_store([TopicPartition(topic, p) for p in stale.partitions])
                return
            self._expected.update(batch.positions)
        if self._on_batch is not None:
            self._on_batch(len(records))

    def _ahead_of_store(self, record: ConsumerRecord) -> bool:
        if record.partition not in self._expected:
            return False
        position = self._expected[record.partition]
        return position is None or record.offset >= position

    async def _seek_to_store(self, tps: list[TopicPartition]) -> None:
        assert self._consumer is not None
        positions = await self._store.positions()
        owned = self._consumer.assignment()
        for tp in tps:
            if tp not in owned:
                continue
            if tp.partition in positions:
                self._consumer.seek(tp, positions[tp.partition])
            else:
                await self._consumer.seek_to_beginning(tp)
            self._expected[tp.partition] = positions.get(tp.partition)

    async def assigned(self, tps: list[TopicPartition]) -> None:
        async with self._writing:
            await self._seek_to_store(tps)
        log.info("following partitions %s", sorted(tp.partition for tp in tps))

    async def revoked(self, tps: list[TopicPartition]) -> None:
        async with self._writing:
            for tp in tps:
                self._expected.pop(tp.partition, None)

    async def _reached(self, stop_at: dict[int, int]) -> bool:
        positions = await self._store.positions()
        return all(positions.get(p, 0) >= offset for p, offset in stop_at.items() if offset > 0)

    async def _check_caught_up(self) -> None:
        # Ready when the whole store (every partition, whoever writes it) is
        # as far as the log was when this projector started.
        if not self.caught_up.is_set() and await self._reached(self._end_offsets):
            self.caught_up.set()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


class _FollowAssignment(ConsumerRebalanceListener):
    def __init__(self, projector: Projector) -> None:
        self._projector = projector

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._projector.revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._projector.assigned(list(assigned))
