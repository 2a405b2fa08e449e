"""The faust edge of the processor: decode, hand to the engine, produce.

One agent (``concurrency=1``: higher concurrency can commit past an event still
in flight, faust-streaming #606) folds ``dispatch.events`` in batches; a timer
on every worker appends a ``Tick`` to each partition it folds that has a
deadline due (``tick_schedule.py``).

faust hands the agent one event per fetch and partition, holding that
fetch's records (``intake.py``), and the agent takes up to
``BATCH_MAX_FETCHES`` of them at a time (``Stream.take_events``). Every record
is decided as soon as it is read; its outputs go into record batches per
topic partition (``outbox.py``), handed to the producer when full and at the
end of the batch, and table writes go to a write-back cache (``writeback.py``)
that reaches the tables once per key at the end of the batch, after the
outputs. The batch's offsets are acknowledged only after that, and faust
commits an offset only after flushing its producer, so a committed offset
always has its outputs and table writes in Kafka before it. An idle processor
folds batches of one record; a busy one writes each dispatch, deadline counter
and cursor once per batch.

The processor's own decisions come back to it on ``dispatch.events``; they are
marked with a header and skipped unread, because each was folded into the
state when it was taken (the engine is tested without echoes, and with them
as no-ops). They are left out as a fetch's records are gathered, and faust's
consumer fetches with a short wait: see ``intake.py``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import faust
from faust.streams import _current_event
from faust.types import TP, EventT

from events.base import utcnow, uuid_text
from events.codec import UndecodableMessage, decode_event, encode
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import Tick
from services.kafka import track_topics
from services.kafka_security import faust_credentials
from services.processor import metrics, timers
from services.processor.changelog import TableWriter, table_keys, table_reader
from services.processor.config import TABLES, ProcessorConfig
from services.processor.engine import Result, Stores, process
from services.processor.handover import hand_over_cleanly
from services.processor.intake import (
    ORIGIN_HEADER,
    EventsTopic,
    FetchedRecords,
    acknowledge_fetched,
    gather_fetches,
    shorten_fetch_wait,
)
from services.processor.outbox import Outbox
from services.processor.runtime.batches import take_batches
from services.processor.tick_schedule import TickSchedule
from services.processor.writeback import WriteBack

log = logging.getLogger("dispatch.processor")

# Most records one fetch hands over, most fetches (one partition's records
# each) folded per batch, and how long an unfilled batch waits for more.
FETCH_MAX_RECORDS = 1000
BATCH_MAX_FETCHES = 16
# How many gathered fetches may wait for the agent. faust's default (4,096
# messages) was sized for single records: with gathered fetches a busy
# processor read millions of records ahead of its agent (1.7 GiB of RSS with
# a million timers being armed). faust pauses fetching a partition whose
# messages fill this buffer.
STREAM_BUFFER_FETCHES = 64
BATCH_WITHIN_S = 0.002
# Largest record batch the outputs are gathered into (faust's default is
# 16 KiB). aiokafka queues at most one batch per partition behind the one in
# flight, and keeps one produce request in flight per broker: a tick firing 300
# timers on a partition made 13 batches of SendMessage alone, and the agent
# waited a broker round trip for each. Below the broker's and the producer's
# 1 MB limits.
OUTPUT_BATCH_BYTES = 512 * 1024
# How often the recovery watchdog looks.
RECOVERY_CHECK_S = 5.0


def build_app(config: ProcessorConfig) -> faust.App:
    shorten_fetch_wait(config.fetch_max_wait_ms)
    kafka = config.kafka
    topics = kafka.topics
    gather_fetches(topics.events)
    # Held by the fold around each batch: a rebalance commits between two.
    batch_in_progress = asyncio.Lock()
    hand_over_cleanly(batch_in_progress, timeout_s=config.session_timeout_s / 2)
    app = faust.App(
        config.full_app_id,
        broker=[f"kafka://{server}" for server in kafka.bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(),  # TLS/SASL when configured
        store=config.store,
        datadir=str(config.data_dir),
        topic_partitions=kafka.partitions,
        # Replication of the changelog topics faust creates for the tables.
        topic_replication_factor=config.replication_factor,
        topic_allow_declare=True,
        web_enabled=False,
        producer_acks=-1,
        # A few ms of linger turns one produce request per output into batches.
        producer_linger=config.producer_linger_s,
        producer_max_batch_size=OUTPUT_BATCH_BYTES,
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1000,
        broker_max_poll_records=FETCH_MAX_RECORDS,
        broker_commit_interval=1.0,
        table_standby_replicas=0,
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=max(1.0, config.session_timeout_s / 4),
    )
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "value_serializer": "raw"}
    # The only topic faust reads; outputs go straight to its producer (the outbox)
    # to topics that ``main`` has made sure exist.
    events = EventsTopic(
        app,
        topics=[topics.events],
        partitions=kafka.partitions,
        maxsize=STREAM_BUFFER_FETCHES,
        **raw,
    )

    # faust opens one RocksDB per table and partition, each by default with up
    # to 3 x 64 MiB of memtables and a 2 GiB block cache: bounded here so that
    # memory tracks the configuration rather than the number of pending timers.
    mib = 1024 * 1024
    rocksdb_options = {
        "write_buffer_size": config.rocksdb_write_buffer_mib * mib,
        "max_write_buffer_number": 2,
        "block_cache_size": config.rocksdb_block_cache_mib * mib,
    }

    def table(name: str) -> Any:
        return app.Table(
            name,
            partitions=kafka.partitions,
            key_type=str,
            value_type=bytes,  # raw: the engine keeps its own orjson encoding
            options=rocksdb_options,
        )

    # In TABLES order, timers before dispatches: a dispatch whose state reached
    # the changelog has its deadlines there too (a redelivery relies on it).
    tables = [table(name) for name in TABLES]
    caches = [WriteBack(table_reader(t)) for t in tables]
    stores = Stores(buckets=caches[0], cursors=caches[1], dispatches=caches[2])

    def delivered(future: Any) -> None:
        if future.cancelled() or future.exception() is None:
            return
        # Never let an offset be committed past a lost output: leave at once,
        # before faust's next commit, so the batch is read again elsewhere.
        log.critical("an output was not delivered, exiting: %r", future.exception())
        logging.shutdown()
        os._exit(70)

    # Outputs go to faust's own aiokafka producer (the one its commit flushes
    # first) in record batches; made with the producer, at the first batch.
    outboxes: list[Outbox] = []

    async def dead_letter(value: bytes, reason: str, partition: int, offset: int) -> None:
        metrics.DEAD_LETTERS.inc()
        log.warning("dead-lettered %s[%d]@%d: %s", topics.events, partition, offset, reason)
        headers = [
            ("reason", reason.encode()[:4000]),
            ("source", f"{topics.events}:{partition}:{offset}".encode()),
        ]
        await outboxes[0].add(topics.dead_letters, None, value, None, headers)

    own_decision = [ORIGIN_HEADER]
    # Partition of a command keyed by its dispatch, on dispatch.send and
    # dispatch.webhooks, when they have as many partitions as dispatch.events:
    # the dispatch's own partition there, which is where the default
    # partitioner (murmur2 of the same key) puts it, without hashing the key
    # in Python for every command. Learnt at the first batch.
    aligned: dict[str, bool] = {topics.send: False, topics.webhooks: False}

    async def produce(result: Result, partition: int) -> None:
        add = outboxes[0].add
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
                await add(topics.events, key, encode(output), partition, own_decision)

    @contextmanager
    def current(event: EventT) -> Iterator[None]:
        # A faust table reads and writes the store (and changelog partition)
        # of the current event, which faust sets only for a stream's latest.
        token = _current_event.set(weakref.ref(event))
        try:
            yield
        finally:
            _current_event.reset(token)

    # Events folded per type in the current batch, for the metric.
    processed: dict[str, int] = {}
    # The seconds each folded partition has deadlines filed in: what the ticker ticks.
    tick_schedule = TickSchedule()

    async def fold_record(value: bytes, partition: int, offset: int, active: bool) -> None:
        try:
            decoded = decode_event(value)
        except UndecodableMessage as exc:
            await dead_letter(value, str(exc), partition, offset)
            return
        if isinstance(decoded, Tick) and not active:
            return  # a standby copy: its active owner fires these timers
        try:
            result = process(stores, partition, offset, decoded, config.policy)
        except Exception as exc:  # a bug must not stall the partition behind it
            log.exception("processing failed at %s@%d", partition, offset)
            await dead_letter(value, f"processing failed: {exc!r}", partition, offset)
            return
        processed[decoded.type] = processed.get(decoded.type, 0) + 1
        if result.rejected is not None:
            await dead_letter(value, result.rejected, partition, offset)
            return
        if result.dropped_status:
            metrics.STATUSES_DROPPED.inc()
        for reason, entry in result.failed_entries:
            log.error("timer entry %s failed at %s@%d: %s", entry, partition, offset, reason)
            await dead_letter(entry, reason, partition, offset)
        if isinstance(decoded, Tick):
            # What the tick drained leaves the schedule (the cursor's lower bound).
            cursor = timers.load_cursor(stores.cursors, partition)
            tick_schedule.passed(partition, cursor.next_second)
            wall = time.time()
            for deadline in result.fired:
                metrics.TIMER_LATENESS.observe((decoded.now - deadline).total_seconds())
                metrics.TIMER_FIRE_DELAY.observe(wall - deadline.timestamp())
        await produce(result, partition)

    # Per partition, the highest offset folded in this consumer generation.
    folded_up_to: dict[int, int] = {}

    async def handle(event: EventT) -> int:
        """Fold the records of one ``FetchedRecords`` event; how many there were."""
        message = event.message
        fetched = cast(FetchedRecords, event.value)
        partition = message.partition
        active = TP(message.topic, partition) in app.assignor.assigned_actives()
        for cache in caches:
            cache.partition = partition
        # faust resumes the flow while a new assignment recovers, then seeks
        # back to the committed offsets: what was folded in between is read
        # again in the same generation. Folded once (a batch either completes,
        # outputs and table writes in Kafka, or the process exits).
        seen = folded_up_to.get(partition, -1)
        if active and not tick_schedule.known(partition):
            # First fold of the partition in this generation: its index as
            # stored (the caches hold no writes between batches).
            seconds = (timers.filed_second(key) for key in table_keys(tables[0], partition))
            filed = [s for s in seconds if s is not None]
            tick_schedule.learn(partition, filed)
            log.info(
                "partition %d: deadlines filed in %d seconds from %s",
                partition,
                len(filed),
                min(filed, default=None),
            )
        with current(event):
            for record in fetched.records:
                if record.offset > seen:
                    await fold_record(record.value, partition, record.offset, active)
        if fetched.records:
            folded_up_to[partition] = max(seen, fetched.records[-1].offset)
        return len(fetched.records)

    # One per table, made with the outbox (at the first batch).
    writers: list[TableWriter] = []

    async def write_tables(batch: Sequence[EventT]) -> None:
        """Write the batch's table changes, one partition at a time, each with an
        event of that partition as the current one."""
        by_partition = {event.message.partition: event for event in batch}
        for cache, writer in zip(caches, writers, strict=True):
            for partition in cache.partitions():
                changes = cache.take(partition)
                if cache is caches[0]:  # the deadline index: new seconds to tick at
                    for key, value in changes:
                        second = timers.filed_second(key) if value is not None else None
                        if second is not None:
                            tick_schedule.filed(partition, second)
                with current(by_partition[partition]):
                    await writer.write(partition, changes)

    async def track_written_topics() -> None:
        # Outputs are handed to the producer before the batch's changelog
        # writes: without this, a refresh for a changelog topic could strand
        # an output waiting for its linger (see ``track_topics``).
        await app.producer.maybe_start()
        written = [topics.events, topics.send, topics.webhooks, topics.dead_letters]
        written += [config.changelog_topic(name) for name in TABLES]
        kafka_producer = cast(Any, app.producer)._ensure_producer()
        await track_topics(kafka_producer, written)
        events_partitions = await kafka_producer.partitions_for(topics.events)
        for topic in aligned:
            aligned[topic] = await kafka_producer.partitions_for(topic) == events_partitions
        outbox = Outbox(kafka_producer, delivered)
        outboxes.append(outbox)
        writers.extend(TableWriter(t, outbox) for t in tables)

    @app.agent(events, concurrency=1)
    async def fold(stream: Any) -> None:
        tracking = False
        generation = None
        async for batch in take_batches(stream, BATCH_MAX_FETCHES, within=BATCH_WITHIN_S):
            if app.consumer_generation_id != generation:
                # A rebalance: a partition may have had another owner, or been
                # restored, since the caches kept what this worker wrote.
                generation = app.consumer_generation_id
                tick_schedule.generation(generation)
                for cache in caches:
                    cache.forget()
                folded_up_to.clear()
            if not tracking:
                # Once the changelogs exist (faust creates them while
                # recovering, before the first batch): asking for a topic
                # that does not exist yet logs an error for each.
                await track_written_topics()
                tracking = True
                # Everything made while starting (faust, aiokafka, the tables)
                # lives as long as the worker: kept out of the cyclic GC's
                # full collections, which would otherwise walk it each time.
                gc.collect()
                gc.freeze()
            try:
                folded = 0
                async with batch_in_progress:
                    for event in batch:
                        folded += await handle(event)
                    # Outputs first, then the table writes (changelog records).
                    await outboxes[0].send_all()
                    await write_tables(batch)
                    await outboxes[0].send_all()
                    for event in batch:
                        acknowledge_fetched(app.consumer, event.message)
                        # The last offset too (faust would at the next batch),
                        # so that a commit between two batches covers this one.
                        app.consumer.ack(event.message)
            except BaseException as exc:
                # faust acks a batch however its body ends (and commits on its
                # way out): leave before that, unflushed, so that the batch is
                # read again and re-decided, whether stopping or failing.
                stopping = isinstance(exc, asyncio.CancelledError)
                log.log(
                    logging.INFO if stopping else logging.CRITICAL,
                    "left in the middle of a batch; it will be read again",
                    exc_info=not stopping,
                )
                logging.shutdown()
                os._exit(0 if stopping else 70)
            metrics.BATCH_SIZE.observe(folded)
            metrics.count_processed(processed)
            processed.clear()

    @app.timer(interval=RECOVERY_CHECK_S)
    async def recovery_watchdog() -> None:
        # faust-streaming's recovery can wait forever for changelog records
        # that never come (seen once after a rebalance: fetches going out,
        # nothing delivered). A worker stuck there owns partitions and fires
        # none of their timers; a fresh one recovers them.
        silent = recovery_silence(cast(Any, app.tables).recovery, time.monotonic())
        if silent is not None and silent > config.recovery_stall_s:
            log.critical("recovery has received nothing for %.0f s, exiting", silent)
            logging.shutdown()
            os._exit(75)

    @app.timer(interval=config.tick_interval_s)
    async def ticker() -> None:
        # Time enters the log as events, so replaying the log replays every
        # timeout. Each worker ticks the partitions it folds, when one of
        # their deadlines has come (see ``tick_schedule.py``).
        tick_schedule.generation(app.consumer_generation_id)
        folded = [
            tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topics.events
        ]
        now = utcnow()
        for partition in tick_schedule.due(folded, math.floor(now.timestamp())):
            tick = Tick(partition=partition, now=now)
            await events.send(key=None, value=encode(tick), partition=partition)

    del fold, ticker, recovery_watchdog
    return app


def recovery_silence(recovery: Any, now: float) -> float | None:
    """Seconds since faust's table recovery last received a changelog record
    (or started), or None when no recovery is in progress. ``now`` is
    ``time.monotonic()``, the clock faust stamps these with."""
    started = getattr(recovery, "_recovery_started_at", None)
    if not getattr(recovery, "in_recovery", False) or started is None:
        return None
    received = getattr(recovery, "_active_events_received_at", {})
    return float(now - max(received.values(), default=started))
