"""The faust app the processor runs on: its settings, its one input topic and
its three tables, with the runtime's patches to faust installed first.

faust internals touched here: none beyond the other runtime modules' (this
module installs ``intake`` and ``handover``, and builds ``EventsTopic``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from services.kafka_security import faust_credentials
from services.processor.config import TABLES, ProcessorConfig
from services.processor.runtime.handover import (
    hand_over_cleanly,
    keep_what_is_read_after_the_last_seek,
)
from services.processor.runtime.intake import (
    EventsTopic,
    gather_fetches,
    set_aside_restored_changelogs,
    shorten_fetch_wait,
)

# Most records one fetch hands over.
FETCH_MAX_RECORDS = 1000
# How many gathered fetches may wait for the agent. faust's default (4,096
# messages) was sized for single records: with gathered fetches a busy
# processor read millions of records ahead of its agent (1.7 GiB of RSS with
# a million timers being armed). faust pauses fetching a partition whose
# messages fill this buffer.
STREAM_BUFFER_FETCHES = 64
# Largest record batch the outputs are gathered into (faust's default is
# 16 KiB). aiokafka queues at most one batch per partition behind the one in
# flight, and keeps one produce request in flight per broker: a tick firing 300
# timers on a partition made 13 batches of SendMessage alone, and the agent
# waited a broker round trip for each. Below the broker's and the producer's
# 1 MB limits.
OUTPUT_BATCH_BYTES = 512 * 1024


def make_app(config: ProcessorConfig, batch_in_progress: asyncio.Lock) -> faust.App:
    """The faust app; ``batch_in_progress`` is held by the fold around each
    batch, so that a rebalance commits between two (``handover``)."""
    kafka = config.kafka
    shorten_fetch_wait(config.fetch_max_wait_ms)
    gather_fetches(kafka.topics.events)
    hand_over_cleanly(batch_in_progress, timeout_s=config.session_timeout_s / 2)
    keep_what_is_read_after_the_last_seek()
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
    set_aside_restored_changelogs(app)
    return app


def events_topic(app: faust.App, config: ProcessorConfig) -> EventsTopic:
    """``dispatch.events``, the only topic faust reads (raw bytes: the
    processor decodes); outputs go straight to its producer (the outbox)."""
    return EventsTopic(
        app,
        topics=[config.kafka.topics.events],
        partitions=config.kafka.partitions,
        maxsize=STREAM_BUFFER_FETCHES,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
    )


def make_tables(app: faust.App, config: ProcessorConfig) -> list[Any]:
    """The processor's tables, in ``TABLES`` order (timers before dispatches:
    a dispatch whose state reached the changelog has its deadlines there too,
    which a redelivery relies on)."""
    # faust opens one RocksDB per table and partition, each by default with up
    # to 3 x 64 MiB of memtables and a 2 GiB block cache: bounded here so that
    # memory tracks the configuration rather than the number of pending timers.
    mib = 1024 * 1024
    rocksdb_options = {
        "write_buffer_size": config.rocksdb_write_buffer_mib * mib,
        "max_write_buffer_number": 2,
        "block_cache_size": config.rocksdb_block_cache_mib * mib,
    }
    return [
        app.Table(
            name,
            partitions=config.kafka.partitions,
            key_type=str,
            value_type=bytes,  # raw: the engine keeps its own orjson encoding
            options=rocksdb_options,
        )
        for name in TABLES
    ]
