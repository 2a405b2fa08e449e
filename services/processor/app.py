"""The faust edge of the processor: decode, hand to the engine, produce.

One agent (``concurrency=1``: higher concurrency can commit past an event still
in flight, faust-streaming #606) folds ``dispatch.events``; a leader-only timer
appends a ``Tick`` to every partition of it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import faust
from faust.types import TP

from events.base import utcnow
from events.codec import UndecodableMessage, decode_event, encode
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import Tick
from services.processor import metrics
from services.processor.config import ProcessorConfig
from services.processor.engine import Result, Stores, process

log = logging.getLogger("dispatch.processor")


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
    events = app.topic(topics.events, partitions=kafka.partitions, **raw)
    send = app.topic(topics.send, partitions=kafka.partitions, **raw)
    webhooks = app.topic(topics.webhooks, partitions=kafka.partitions, **raw)
    dead_letters = app.topic(topics.dead_letters, partitions=1, **raw)

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

    stores = Stores(
        dispatches=table("dispatches"), buckets=table("deadlines"), cursors=table("timer-cursors")
    )

    async def dead_letter(value: bytes, reason: str, partition: int, offset: int) -> None:
        metrics.DEAD_LETTERS.inc()
        log.warning("dead-lettered %s[%d]@%d: %s", topics.events, partition, offset, reason)
        headers = [
            ("reason", reason.encode()[:4000]),
            ("source", f"{topics.events}:{partition}:{offset}".encode()),
        ]
        await dead_letters.send(key=None, value=value, headers=headers)

    async def produce(result: Result, partition: int) -> None:
        for output in result.outputs:
            key = str(output.dispatch_uuid).encode() if hasattr(output, "dispatch_uuid") else None
            if isinstance(output, SendMessage):
                await send.send(key=key, value=encode(output))
            elif isinstance(output, DeliverWebhook):
                await webhooks.send(key=key, value=encode(output))
            else:
                # Decisions stay on the dispatch's own partition, next to its history.
                await events.send(key=key, value=encode(output), partition=partition)

    @app.agent(events, concurrency=1)
    async def fold(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            value: bytes = event.value
            try:
                decoded = decode_event(value)
            except UndecodableMessage as exc:
                await dead_letter(value, str(exc), message.partition, message.offset)
                continue
            if (
                isinstance(decoded, Tick)
                and TP(message.topic, message.partition) not in app.assignor.assigned_actives()
            ):
                continue  # a standby copy: its active owner fires these timers
            try:
                result = process(stores, message.partition, message.offset, decoded, config.policy)
            except Exception as exc:  # a bug must not stall the partition behind it
                log.exception("processing failed at %s@%d", message.partition, message.offset)
                await dead_letter(value, f"processing failed: {exc!r}", *_where(message))
                continue
            metrics.EVENTS_PROCESSED.labels(decoded.type).inc()
            if result.rejected is not None:
                await dead_letter(value, result.rejected, message.partition, message.offset)
                continue
            if result.fired and isinstance(decoded, Tick):
                wall = time.time()
                for deadline in result.fired:
                    metrics.TIMER_LATENESS.observe((decoded.now - deadline).total_seconds())
                    metrics.TIMER_FIRE_DELAY.observe(wall - deadline.timestamp())
            await produce(result, message.partition)

    @app.timer(interval=config.tick_interval_s, on_leader=True)
    async def ticker() -> None:
        # Time enters the log as events, so replaying the log replays every timeout.
        now = utcnow()
        for partition in range(kafka.partitions):
            tick = Tick(partition=partition, now=now)
            await events.send(key=None, value=encode(tick), partition=partition)

    del fold, ticker
    return app


def _where(message: Any) -> tuple[int, int]:
    return int(message.partition), int(message.offset)
