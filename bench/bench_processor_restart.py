"""Restart after kill -9 with dispatches in flight: seconds until processing
resumes, with the local RocksDB state kept, and with it wiped (restore from
the changelog topics).

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_processor_restart.py \\
        [--dispatches 20000]

"Resumes" = a probe dispatch requested right after the restart gets its
SendMessage: the worker has rejoined, restored its tables and caught up.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_timers import caught_up  # beside this script

from events.codec import decode_send, encode
from events.dispatch import MessageSubmitted, WorkflowRequested
from events.topics import Topics
from services.failover.factories import command_id
from services.kafka import KafkaSettings, ensure_topics, make_producer
from tests.conftest import kafka_env
from tests.processes import Process, free_port

ITEM = {
    "to": {"type": "sms", "number": "447700900000"},
    "from": {"type": "sms", "number": "447700900001"},
    "message": {"content": {"type": "text", "text": "bench"}},
}
WORKFLOW = [{**ITEM, "failover": {"expiry_time": 86400, "condition_status": "delivered"}}, ITEM]


def start(settings: KafkaSettings, data: Path, logs: Path, name: str) -> Process:
    env = {
        **kafka_env(settings),
        "PROCESSOR_DATA_DIR": str(data),
        "PROCESSOR_METRICS_PORT": str(free_port()),
    }
    return Process(name, ["dispatch-processor"], env, logs)


async def sends_of(consumer: AIOKafkaConsumer, seen: set[uuid.UUID]) -> None:
    batch = await consumer.getmany(timeout_ms=200)
    for messages in batch.values():
        for message in messages:
            seen.add(decode_send(message.value).dispatch_uuid)


async def probe(
    settings: KafkaSettings, consumer: AIOKafkaConsumer, seen: set[uuid.UUID], process: Process
) -> float:
    """Request one dispatch now; seconds until its SendMessage shows up."""
    producer = make_producer(settings)
    await producer.start()
    started = time.perf_counter()
    d = uuid.uuid4()
    event = WorkflowRequested(dispatch_uuid=d, application_id="b", workflow=WORKFLOW)
    await producer.send_and_wait(settings.topics.events, encode(event), key=str(d).encode())
    await producer.stop()
    while d not in seen:
        if not process.alive():
            raise SystemExit(process.log()[-3000:])
        await sends_of(consumer, seen)
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dispatches", type=int, default=20000)
    args = parser.parse_args()
    settings = KafkaSettings(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        partitions=4,
        topics=Topics.from_prefix(f"benchr{uuid.uuid4().hex[:6]}."),
    )
    await ensure_topics(settings)
    tmp = Path(tempfile.mkdtemp(prefix="bench-restart-"))
    data = tmp / "data"
    consumer = AIOKafkaConsumer(
        settings.topics.send,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: set[uuid.UUID] = set()
    processes: list[Process] = []
    try:
        processes.append(start(settings, data, tmp, "processor-1"))
        producer = make_producer(settings, linger_ms=20)
        await producer.start()
        futures = []
        for _ in range(args.dispatches):
            d = uuid.uuid4()
            key = str(d).encode()
            for event in (
                WorkflowRequested(dispatch_uuid=d, application_id="b", workflow=WORKFLOW),
                MessageSubmitted(
                    dispatch_uuid=d, step=0, command_id=command_id(str(d), 0), message_uuid=d.hex
                ),
            ):
                futures.append(await producer.send(settings.topics.events, encode(event), key=key))
        await asyncio.gather(*futures)
        await producer.stop()
        while len(seen) < args.dispatches:
            await sends_of(consumer, seen)
        # In flight, not backlogged: the worker has read everything (its own
        # echoes included) and committed, so the figures below are the restart.
        await caught_up(settings, processes[-1])
        print(f"{args.dispatches} dispatches in flight (each with a pending timer)")

        processes[-1].kill9()
        processes.append(start(settings, data, tmp, "processor-2"))
        kept = await probe(settings, consumer, seen, processes[-1])
        print(f"kill -9, restart with local state kept: processing resumed after {kept:.1f}s")

        await asyncio.sleep(3)
        processes[-1].kill9()
        shutil.rmtree(data)
        processes.append(start(settings, data, tmp, "processor-3"))
        wiped = await probe(settings, consumer, seen, processes[-1])
        print(f"kill -9, restart with local state wiped: processing resumed after {wiped:.1f}s")
    finally:
        await consumer.stop()
        for process in processes:
            process.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
