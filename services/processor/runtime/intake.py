"""How events reach the fold agent: three adjustments to faust's consumer.

1. **A short fetch wait.** faust's consumer also reads partitions that are
   almost always empty (the assignor's leader topic; changelogs while
   recovering), and faust fixes the broker-side wait of a fetch at 1.5 s.
   aiokafka keeps one fetch in flight per broker and leaves out of it the
   partitions whose records are still buffered, so while the agent works
   through a fetched batch, the next request holds only empty partitions and
   the broker keeps it the full 1.5 s: no new events, ticks included, arrive
   in that time. Measured on 100,000 queued events: 4,100 events/s with the
   1.5 s wait, 12,400/s with 100 ms. The wait only bounds that stall; a fetch
   whose partitions have data returns at once whatever its wait.

2. **One faust message per fetch and partition.** faust hands every record
   through its conductor, a task race per message (``wait_first``), a stream
   buffer and an event before the agent sees it: about 100 us of CPU per
   record, more than the fold itself. For ``dispatch.events`` the records a
   fetch returned for a partition become one message (``FetchedRecords``)
   whose offset is the last record's; the agent folds the records in order.
   Acknowledgement follows: faust acknowledges the message (the last offset)
   when the agent's batch ends, and the agent acknowledges the offsets before
   it at the same point (``acknowledge_fetched``), so faust's commit, which
   stops at the first offset not acknowledged, still never passes a record
   that was not folded.

3. **Own decisions skipped unread.** The processor's decisions come back to it
   on ``dispatch.events`` (marked with ``ORIGIN_HEADER``); each was folded
   when it was taken. They are left out of ``FetchedRecords`` by their header
   (their offsets are still acknowledged with the rest).

4. **Restored changelogs set aside.** Once faust has restored the tables it
   stops taking records of their changelog partitions but keeps them
   assigned; aiokafka fetches one batch of each and holds it. Every fetch
   after that leaves those partitions out, which ``services/fetch_wait.py``
   would read as a busy consumer's partial fetch: the idle processor asked
   ten times a second. ``set_aside_restored_changelogs`` names them, but only
   while faust takes every other partition it holds: during a recovery the
   stream partitions wait too, and fetches stay short as before.

faust and aiokafka internals touched (pinned by
``tests/unit/processor/test_runtime_contract.py`` and ``test_intake.py``):
``AIOKafkaConsumerThread._create_worker_consumer``, aiokafka's
``AIOKafkaConsumer._fetch_max_wait_ms``, faust's aiokafka ``Consumer._getmany``,
``Consumer._read_offset``, ``Consumer._committed_offset``, ``Consumer._acked``,
``Consumer._acked_index``, ``Consumer._n_acked``, ``faust.types.tuples.ack_lock``,
``Topic._compile_decode``, ``Consumer._active_partitions``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.tuples import ack_lock

from services import fetch_wait
from services.processor import metrics

# Marks the processor's own decisions on dispatch.events.
ORIGIN_HEADER = ("dispatch-origin", b"processor")
FETCH_MAX_WAIT_MS = 100


@dataclass(slots=True)
class FetchedRecords:
    """What one fetch returned for one partition of dispatch.events, as the
    single record faust turns into a message (the attributes faust reads from
    an aiokafka record) whose value is this object itself."""

    topic: str
    partition: int
    # The records to fold (own decisions left out), in offset order.
    records: Sequence[Any]
    # Every offset from ``first_offset`` to ``offset`` is covered by this
    # message: acknowledging it acknowledges all of them.
    first_offset: int
    offset: int
    timestamp: int | None
    serialized_value_size: int
    timestamp_type: int = 0
    key: None = None
    checksum: None = None
    serialized_key_size: int = 0
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)

    @property
    def value(self) -> FetchedRecords:
        return self


def gather(topic: str, partition: int, fetched: Sequence[Any], first_offset: int) -> FetchedRecords:
    """One ``FetchedRecords`` for a fetch's records of one partition."""
    kept = [record for record in fetched if ORIGIN_HEADER not in record.headers]
    if len(kept) < len(fetched):
        metrics.ECHOES_SKIPPED.inc(len(fetched) - len(kept))
    last = fetched[-1]
    return FetchedRecords(
        topic=topic,
        partition=partition,
        records=kept,
        first_offset=first_offset,
        offset=last.offset,
        timestamp=last.timestamp,
        serialized_value_size=sum(record.serialized_value_size for record in fetched),
    )


class EventsTopic(faust.Topic):
    """``dispatch.events`` as the agent reads it: one event per ``FetchedRecords``
    (faust's value decoding would try to deserialize the object)."""

    def _compile_decode(self) -> None:
        super()._compile_decode()
        decode: Callable[..., Awaitable[Any]] = self.decode
        create_event = self.app.create_event

        async def decode_fetched(message: Any, *, propagate: bool = False) -> Any:
            if isinstance(message.value, FetchedRecords):
                return create_event(None, message.value, {}, message)
            return await decode(message, propagate=propagate)

        self.decode = decode_fetched  # type: ignore[method-assign]


_create_worker_consumer = faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer
_getmany = faust_aiokafka.Consumer._getmany
# Topics whose fetches are gathered (``gather_fetches``).
_gathered: set[str] = set()


def shorten_fetch_wait(max_wait_ms: int = FETCH_MAX_WAIT_MS) -> None:
    """Make faust's worker consumers fetch with ``max_wait_ms`` instead of 1.5 s
    (faust passes a constant; aiokafka reads the attribute when it starts)."""

    def create(self: Any, transport: Any) -> Any:
        consumer = _create_worker_consumer(self, transport)
        consumer._fetch_max_wait_ms = max_wait_ms
        return consumer

    faust_aiokafka.AIOKafkaConsumerThread._create_worker_consumer = create  # type: ignore[method-assign]


def gather_fetches(topic: str) -> None:
    """Make faust's consumer hand each fetch's records of ``topic`` for a
    partition over as one ``FetchedRecords`` (other topics, the changelogs
    faust recovers tables from among them, pass unchanged)."""
    _gathered.add(topic)

    async def getmany(self: Any, active_partitions: Any, timeout: float) -> Any:
        records: dict[Any, list[Any]] = dict(await _getmany(self, active_partitions, timeout))
        for tp, fetched in records.items():
            if tp.topic not in _gathered or not fetched:
                continue
            read = self._read_offset[tp]
            if read is not None and fetched[0].offset < read:
                # faust drops a record below its read offset (read again after
                # a seek); so does this, to hand over the same records.
                fetched = [record for record in fetched if record.offset >= read]
                if not fetched:
                    records[tp] = fetched
                    continue
            first = fetched[0].offset
            if read is not None and read + 1 < first:
                first = read + 1  # offsets the fetch skipped (none on this topic)
            records[tp] = [gather(tp.topic, tp.partition, fetched, first)]
            # faust compares each message's offset with the last one read and
            # files the difference as a gap it may commit over; the offsets
            # before this message are acknowledged by the agent instead.
            self._read_offset[tp] = max(fetched[-1].offset - 1, read or 0)
        return records

    faust_aiokafka.Consumer._getmany = getmany  # type: ignore[method-assign]


def acknowledge_fetched(consumer: Any, message: Any) -> None:
    """Acknowledge every offset a ``FetchedRecords`` message covers but its own
    (faust acknowledges that one): once its records are folded and written."""
    fetched: FetchedRecords = message.value
    tp = message.tp
    # faust's own ``Consumer.ack`` bookkeeping, for a range of offsets.
    with ack_lock:
        committed = consumer._committed_offset[tp]
        start = fetched.first_offset if committed is None else max(fetched.first_offset, committed)
        acked_index = consumer._acked_index[tp]
        offsets = [offset for offset in range(start, fetched.offset) if offset not in acked_index]
        acked_index.update(offsets)
        consumer._acked[tp].extend(offsets)
        consumer._n_acked += len(offsets)


def set_aside_restored_changelogs(app: Any) -> None:
    """Tell the fetch waits which changelog partitions faust does not take
    (its active set left them out) while it takes every other one."""

    def restored_changelogs() -> frozenset[Any]:
        consumer = app.consumer
        active = consumer._active_partitions
        if not active:
            return frozenset()
        changelogs = app.tables.changelog_topics
        assigned = consumer.assignment()
        if any(tp.topic not in changelogs and tp not in active for tp in assigned):
            return frozenset()  # a recovery or a handover is under way
        return frozenset(tp for tp in assigned if tp.topic in changelogs and tp not in active)

    fetch_wait.set_aside_when(restored_changelogs)
