"""Projector catch-up rate on each projection store, beside a bare consumer.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_projector_store.py \\
        [--dispatches 3000] [--postgres postgresql://postgres@127.0.0.1:55432/postgres]

Writes ``--dispatches`` failover histories (12 events each) to fresh topics,
then times, in this process: a bare aiokafka consumer reading them all (the
baseline), a projector into a new SQLite file, and with ``--postgres`` a
projector into a new database on that server (created and dropped here).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.codec import encode
from events.topics import Topics
from projections.projector import Projector
from projections.store import open_store
from services.kafka import KafkaSettings, ensure_topics, make_producer
from tests.fixtures_events import failover_history


async def write_log(settings: KafkaSettings, dispatches: int) -> int:
    producer = make_producer(settings)
    await producer.start()
    sent = 0
    try:
        for _ in range(dispatches):
            dispatch = uuid.uuid4()
            for event in failover_history(dispatch):
                await producer.send(
                    settings.topics.events, encode(event), key=str(dispatch).encode()
                )
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def bare_read(settings: KafkaSettings, total: int) -> float:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        max_poll_records=2000,
    )
    await consumer.start()
    try:
        consumer.assign(
            [TopicPartition(settings.topics.events, p) for p in range(settings.partitions)]
        )
        started, seen = time.perf_counter(), 0
        while seen < total:
            batches = await consumer.getmany(timeout_ms=200)
            seen += sum(len(records) for records in batches.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def project(settings: KafkaSettings, url: str) -> float:
    store = await open_store(url)
    projector = Projector(settings, store)
    started = time.perf_counter()
    await projector.start()
    following = asyncio.create_task(projector.run())
    try:
        await projector.caught_up.wait()
        return time.perf_counter() - started
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        await projector.stop()
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dispatches", type=int, default=3000)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (database postgres)")
    args = parser.parse_args()
    settings = KafkaSettings(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        partitions=8,
        topics=Topics.from_prefix(f"bench{uuid.uuid4().hex[:8]}."),
    )
    await ensure_topics(settings)
    total = await write_log(settings, args.dispatches)
    print(f"{args.dispatches} dispatches, {total} events on {settings.partitions} partitions")

    seconds = await bare_read(settings, total)
    print(f"bare consumer: {total / seconds:,.0f} events/s ({seconds:.2f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        seconds = await project(settings, str(Path(tmp) / "bench.sqlite3"))
    print(f"projector, SQLite: {total / seconds:,.0f} events/s ({seconds:.2f} s)")
    if args.postgres:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(args.postgres)
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            seconds = await project(settings, args.postgres.rsplit("/", 1)[0] + f"/{name}")
            print(f"projector, PostgreSQL: {total / seconds:,.0f} events/s ({seconds:.2f} s)")
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
