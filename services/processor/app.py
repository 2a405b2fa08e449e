"""The faust edge of the processor: decode, hand to the engine, produce.

One agent (``concurrency=1``: higher concurrency can commit past an event still
in flight, faust-streaming #606) folds ``dispatch.events``; a leader-only timer
appends a ``Tick`` to every partition of it.

The agent folds in batches: every event is decided and its outputs produced as
soon as it is read, but table writes go to a write-back cache (see
``writeback.py``) that is flushed, and the batch's events acknowledged, when
the stream has nothing more waiting (or the batch reaches ``BATCH_MAX``). An
idle processor therefore flushes after every event; a busy one writes each
dispatch, deadline counter and cursor once per batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any, cast

import faust
from faust.streams import _current_event
from faust.types import TP, EventT

from events.base import utcnow
from events.codec import UndecodableMessage, decode_event, encode
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import Tick
from services.processor import metrics
from services.processor.config import ProcessorConfig
from services.processor.echoes import OwnDecisions
from services.processor.engine import Result, Stores, process
from services.processor.writeback import WriteBack

log = logging.getLogger("dispatch.processor")

# Most events folded before the table writes are flushed and the events acked.
BATCH_MAX = 500
# How often a batch left waiting (see ``settle``) is completed.
SETTLE_INTERVAL_S = 0.1


def build_app(config: ProcessorConfig) -> faust.App:
    kafka = config.kafka
    topics = kafka.topics
    app = faust.App(
        config.full_app_id,
        broker=[f"kafka://{server}" for server in kafka.bootstrap_servers.split(",")],
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
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        table_standby_replicas=0,
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=max(1.0, config.session_timeout_s / 4),
    )
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "value_serializer": "raw"}
    # The only topic faust reads; outputs go straight to its producer (``emit``)
    # to topics that ``main`` has made sure exist.
    events = app.topic(topics.events, partitions=kafka.partitions, **raw)

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

    caches = [WriteBack(table(name)) for name in ("dispatches", "deadlines", "timer-cursors")]
    stores = Stores(dispatches=caches[0], buckets=caches[1], cursors=caches[2])

    def flush(batch: list[EventT]) -> None:
        """Write the batch's table changes, one partition at a time with an
        event of that partition as faust's current event (a faust table writes
        to the store and changelog partition of the current event)."""
        by_partition = {event.message.partition: event for event in batch}
        for cache in caches:
            for partition in cache.partitions():
                token = _current_event.set(weakref.ref(by_partition[partition]))
                try:
                    cache.flush(partition)
                finally:
                    _current_event.reset(token)

    producer = app.producer
    own = OwnDecisions()

    async def forget_own(*args: Any, **kwargs: Any) -> None:
        own.forget()  # partitions may be read again from their committed offsets

    for signal in (app.on_partitions_revoked, app.on_partitions_assigned):
        signal.connect(cast(Any, forget_own))

    # Delivery reports of what the current batch produced: its events are acked
    # only once every one of them has succeeded (acks=all).
    deliveries: list[Any] = []

    async def emit(topic: str, key: bytes | None, value: bytes, **kwargs: Any) -> None:
        # Straight to faust's producer (the same one its commit flushes), without
        # the per-message futures and callbacks of ``Topic.send``.
        partition = kwargs.get("partition")
        headers = kwargs.get("headers")
        deliveries.append(await producer.send(topic, key, value, partition, None, headers))

    async def dead_letter(value: bytes, reason: str, partition: int, offset: int) -> None:
        metrics.DEAD_LETTERS.inc()
        log.warning("dead-lettered %s[%d]@%d: %s", topics.events, partition, offset, reason)
        headers = [
            ("reason", reason.encode()[:4000]),
            ("source", f"{topics.events}:{partition}:{offset}".encode()),
        ]
        await emit(topics.dead_letters, None, value, headers=headers)

    async def produce(result: Result, partition: int) -> None:
        for output in result.outputs:
            key = str(output.dispatch_uuid).encode() if hasattr(output, "dispatch_uuid") else None
            if isinstance(output, SendMessage):
                await emit(topics.send, key, encode(output))
            elif isinstance(output, DeliverWebhook):
                await emit(topics.webhooks, key, encode(output))
            else:
                # Decisions stay on the dispatch's own partition, next to its history.
                value = encode(output)
                own.appended(value, output.type)
                await emit(topics.events, key, value, partition=partition)

    async def handle(event: EventT) -> None:
        message = event.message
        value: bytes = event.value
        echoed = own.echo(value)
        if echoed is not None:
            metrics.EVENTS_PROCESSED.labels(echoed).inc()
            return  # a decision of ours, folded when it was taken
        try:
            decoded = decode_event(value)
        except UndecodableMessage as exc:
            await dead_letter(value, str(exc), message.partition, message.offset)
            return
        if (
            isinstance(decoded, Tick)
            and TP(message.topic, message.partition) not in app.assignor.assigned_actives()
        ):
            return  # a standby copy: its active owner fires these timers
        for cache in caches:
            cache.partition = message.partition
        try:
            result = process(stores, message.partition, message.offset, decoded, config.policy)
        except Exception as exc:  # a bug must not stall the partition behind it
            log.exception("processing failed at %s@%d", message.partition, message.offset)
            await dead_letter(value, f"processing failed: {exc!r}", *_where(message))
            return
        metrics.EVENTS_PROCESSED.labels(decoded.type).inc()
        if result.rejected is not None:
            await dead_letter(value, result.rejected, message.partition, message.offset)
            return
        if result.fired and isinstance(decoded, Tick):
            wall = time.time()
            for deadline in result.fired:
                metrics.TIMER_LATENESS.observe((decoded.now - deadline).total_seconds())
                metrics.TIMER_FIRE_DELAY.observe(wall - deadline.timestamp())
        await produce(result, message.partition)

    # The batch in progress: events folded whose table writes are still in the
    # caches and whose outputs may not be delivered yet; none of them is acked.
    batch: list[EventT] = []
    lock = asyncio.Lock()  # one of the agent (folding) or settle (completing)
    acker: list[Any] = []  # the agent's manual-ack stream

    def abandon() -> None:
        # Not acked, so delivered again: nothing of the batch may reach the
        # tables ahead of it.
        for cache in caches:
            cache.discard()
        own.forget()  # those decisions are not in the tables after all
        deliveries.clear()
        batch.clear()

    async def complete() -> None:
        """Write the batch's tables, wait until all its outputs are delivered,
        ack its events. Waiting here also sizes the batches: what arrives
        meanwhile is folded as the next batch, with its writes coalesced."""
        try:
            flush(batch)
            if deliveries:
                # A failed delivery raises here, before anything is acked.
                await asyncio.gather(*deliveries)
                deliveries.clear()
        except BaseException:
            abandon()
            raise
        for done in batch:
            await acker[0].ack(done)
        batch.clear()

    @app.agent(events, concurrency=1)
    async def fold(stream: Any) -> None:
        # Manual acks: an event is acked only once its table writes are flushed
        # and its outputs delivered.
        manual = stream.noack()
        acker[:] = [manual]
        queue = manual.channel.queue
        async for event in manual.events():
            async with lock:
                batch.append(event)
                try:
                    await handle(event)
                except BaseException:
                    abandon()
                    raise
                if len(batch) >= BATCH_MAX or queue.empty():
                    await complete()

    @app.timer(interval=SETTLE_INTERVAL_S)
    async def settle() -> None:
        # The agent completes its batch when its stream has nothing waiting.
        # If what was waiting is then dropped (a rebalance skips it), the agent
        # would wait for the next event with its batch unacked, and hold up the
        # rebalance, which waits for every event in flight to be acked.
        if batch and not lock.locked():
            async with lock:
                if batch:
                    await complete()

    @app.timer(interval=config.tick_interval_s, on_leader=True)
    async def ticker() -> None:
        # Time enters the log as events, so replaying the log replays every timeout.
        now = utcnow()
        for partition in range(kafka.partitions):
            tick = Tick(partition=partition, now=now)
            await events.send(key=None, value=encode(tick), partition=partition)

    del fold, ticker, settle
    return app


def _where(message: Any) -> tuple[int, int]:
    return int(message.partition), int(message.offset)
