"""Fold throughput: events/s through the real processor, beside a raw aiokafka
consume-and-produce loop over the same topic in the same run.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_processor.py \
        [--dispatches N] [--workers 2]

Each dispatch is three input events (WorkflowRequested, MessageSubmitted, a
`delivered` status), all produced before either side starts. The raw loop
reads them and writes each one to another topic (acks=all), once before the
processor runs and once after; the faster of the two is the baseline (the
broker warms up during a run, and a cold baseline flattered the ratio by up
to a quarter). 40,000 dispatches by default: with 5,000 the processor's
window is about a second and start-up effects dominate it. A bare faust
agent (``faust_bare.py``: the processor's faust settings and batching, no
tables, no engine) does the same, to show what faust alone costs. The processor
folds them, writes its decisions back to dispatch.events (and folds their
echo too), a SendMessage and two webhooks per dispatch. Its window runs from
its first output to its last final report (broker timestamps), so worker
start-up is not counted; the figure is input events/s.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.base import utcnow
from events.codec import decode_webhook, encode
from events.dispatch import MessageStatusReceived, MessageSubmitted, WorkflowRequested
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


async def produce_inputs(settings: KafkaSettings, dispatches: int) -> int:
    producer = make_producer(settings, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        workflow = [
            {**ITEM, "failover": {"expiry_time": 600, "condition_status": "delivered"}},
            ITEM,
        ]
        futures = []
        for _ in range(dispatches):
            d = uuid.uuid4()
            key = str(d).encode()
            now = utcnow()
            for event in (
                WorkflowRequested(dispatch_uuid=d, application_id="bench", workflow=workflow),
                MessageSubmitted(
                    dispatch_uuid=d, step=0, command_id=command_id(str(d), 0), message_uuid=d.hex
                ),
                MessageStatusReceived(
                    dispatch_uuid=d, message_uuid=d.hex, status="delivered", timestamp=now
                ),
            ):
                futures.append(await producer.send(settings.topics.events, encode(event), key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return 3 * dispatches


async def raw_loop(settings: KafkaSettings, records: int) -> float:
    """Consume every input and produce it to a scratch topic: the ceiling."""
    out = settings.topics.events + f".raw-out-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(out, settings.partitions, 1)])
    await admin.close()
    consumer = AIOKafkaConsumer(
        settings.topics.events,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    seen = 0
    started: float | None = None
    try:
        while seen < records:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for tp, messages in batch.items():
                if started is None:
                    started = time.perf_counter()
                for message in messages:
                    await producer.send(out, message.value, key=message.key)
                seen += len(messages)
                await consumer.commit({tp: messages[-1].offset + 1})
        await producer.flush()
        assert started is not None
        return records / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await consumer.stop()


async def faust_bare_run(settings: KafkaSettings, records: int) -> float:
    """The same events through a bare faust agent (``faust_bare.py``): what faust
    itself costs before the processor does anything."""
    out = settings.topics.events + ".faust-out"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(out, settings.partitions, 1)])
    await admin.close()
    tmp = Path(tempfile.mkdtemp(prefix="bench-faust-bare-"))
    process = Process(
        "faust-bare",
        [
            "python",
            str(Path(__file__).with_name("faust_bare.py")),
            settings.topics.events,
            str(settings.partitions),
        ],
        {"KAFKA_BOOTSTRAP": settings.bootstrap_servers},
        tmp,
    )
    try:
        cpu: list[float] = []
        window = await output_window(settings, [out], process, records, lambda _: True, cpu)
        print(f"bare faust agent CPU {1e6 * cpu[0] / records:.0f} us per event")
        return records / window
    finally:
        process.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def output_window(
    settings: KafkaSettings,
    topics: list[str],
    process: Process | list[Process],
    wanted: int,
    counts: Callable[[Any], bool],
    cpu: list[float] | None = None,
) -> float:
    """Seconds (broker timestamps) from the first record on ``topics`` to the
    ``wanted``-th record that ``counts``: what start-up costs is left out.
    ``cpu`` gets the CPU seconds of the process(es) from its first output seen
    to the last (read as the records arrive, so a little more than the window)."""
    processes = process if isinstance(process, list) else [process]

    def cpu_now() -> float:
        return sum(cpu_seconds(p.popen.pid) for p in processes)

    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    first: float | None = None
    last = 0.0
    seen = 0
    try:
        deadline = time.monotonic() + 600
        while seen < wanted and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            if first is None and batch and cpu is not None:
                cpu.append(cpu_now())
            for messages in batch.values():
                for message in messages:
                    stamp = message.timestamp / 1000
                    first = stamp if first is None else min(first, stamp)
                    if counts(message):
                        seen += 1
                        last = max(last, stamp)
            for p in processes:
                if not p.alive():
                    raise SystemExit(p.log()[-3000:])
        assert first is not None and seen >= wanted, (seen, wanted)
        if cpu is not None:
            cpu.append(cpu_now() - cpu.pop())
        return last - first
    finally:
        await consumer.stop()


async def processor_run(settings: KafkaSettings, dispatches: int, inputs: int, store: str) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="bench-processor-"))
    process = Process(
        "processor",
        ["dispatch-processor"],
        {
            **kafka_env(settings),
            "PROCESSOR_DATA_DIR": str(tmp / "data"),
            "PROCESSOR_METRICS_PORT": str(free_port()),
            "PROCESSOR_STORE": store,
            "PROCESSOR_LOG_LEVEL": "WARNING",
        },
        tmp,
    )
    topics = settings.topics

    def final_report(message: Any) -> bool:
        return bool(
            message.topic == topics.webhooks and decode_webhook(message.value).kind == "final"
        )

    try:
        cpu: list[float] = []
        window = await output_window(
            settings, [topics.send, topics.webhooks], process, dispatches, final_report, cpu
        )
        print(f"processor CPU {1e6 * cpu[0] / inputs:.0f} us per input event")
        # Its own decisions come back too (3 per dispatch here), read and skipped.
        read = (inputs + 3 * dispatches) / window
        print(f"processor window {window:.1f}s, events read (echoes included): {read:,.0f}/s")
        return inputs / window
    finally:
        process.stop()
        shutil.rmtree(tmp, ignore_errors=True)


async def processor_workers_run(
    settings: KafkaSettings, dispatches: int, inputs: int, store: str, workers: int
) -> float:
    """The fold with ``workers`` processor processes sharing the partitions.
    On topics of its own, with the inputs produced only once every worker is
    up and the group has settled: a worker joining mid-run would stop the
    others for a rebalance and measure that instead."""
    settings = KafkaSettings(
        bootstrap_servers=settings.bootstrap_servers,
        partitions=settings.partitions,
        topics=Topics.from_prefix(f"bench{uuid.uuid4().hex[:6]}."),
    )
    await ensure_topics(settings)
    tmp = Path(tempfile.mkdtemp(prefix="bench-processor-"))
    processes = [
        Process(
            f"processor-{n}",
            ["dispatch-processor"],
            {
                **kafka_env(settings),
                "PROCESSOR_DATA_DIR": str(tmp / f"data-{n}"),
                "PROCESSOR_METRICS_PORT": str(free_port()),
                "PROCESSOR_STORE": store,
                # INFO: the bench waits for faust's "Ready" line.
                "PROCESSOR_LOG_LEVEL": "INFO",
            },
            tmp,
        )
        for n in range(workers)
    ]
    topics = settings.topics

    def final_report(message: Any) -> bool:
        return bool(
            message.topic == topics.webhooks and decode_webhook(message.value).kind == "final"
        )

    try:
        for process in processes:
            process.wait_for_log("Worker]: Ready", timeout=90)
        await asyncio.sleep(WORKERS_SETTLE_S)
        cpu: list[float] = []
        measuring = asyncio.create_task(
            output_window(
                settings, [topics.send, topics.webhooks], processes, dispatches, final_report, cpu
            )
        )
        await produce_inputs(settings, dispatches)
        window = await measuring
        print(f"{workers} workers' CPU {1e6 * cpu[0] / inputs:.0f} us per input event")
        return inputs / window
    finally:
        for process in processes:
            process.stop()
        shutil.rmtree(tmp, ignore_errors=True)


# After the last worker is ready: time for the group's last rebalance.
WORKERS_SETTLE_S = 10.0


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dispatches", type=int, default=40000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--store", default="rocksdb://")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also fold with this many processor processes (fresh topics, same inputs)",
    )
    args = parser.parse_args()
    bootstrap = __import__("os").environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    settings = KafkaSettings(
        bootstrap_servers=bootstrap,
        partitions=args.partitions,
        topics=Topics.from_prefix(f"bench{uuid.uuid4().hex[:6]}."),
    )
    await ensure_topics(settings)
    inputs = await produce_inputs(settings, args.dispatches)
    raw_before = await raw_loop(settings, inputs)
    bare = await faust_bare_run(settings, inputs)
    folded = await processor_run(settings, args.dispatches, inputs, args.store)
    # The raw loop again, after: the broker warms up over a run, and the
    # processor should not be measured against a cold baseline. The faster of
    # the two is the ceiling.
    raw_after = await raw_loop(settings, inputs)
    raw = max(raw_before, raw_after)
    print(f"dispatches {args.dispatches}, input events {inputs}, partitions {args.partitions}")
    print(
        f"raw aiokafka consume+produce: {raw:,.0f} events/s "
        f"(before {raw_before:,.0f}, after {raw_after:,.0f})"
    )
    print(
        f"bare faust agent, same settings: {bare:,.0f} events/s ({100 * bare / raw:.0f} % of raw)"
    )
    print(f"processor ({args.store}):    {folded:,.0f} input events/s")
    print(
        f"ratio: {100 * folded / raw:.0f} % of the raw loop, "
        f"{100 * folded / bare:.0f} % of the bare faust agent"
    )
    if args.workers > 1:
        shared = await processor_workers_run(
            settings, args.dispatches, inputs, args.store, args.workers
        )
        print(
            f"processor, {args.workers} workers: {shared:,.0f} input events/s "
            f"({100 * shared / raw:.0f} % of the one-process raw loop)"
        )


if __name__ == "__main__":
    asyncio.run(main())
