"""Durable timers under load: RSS with many pending timers, and lateness with
thousands falling due per second, through the real processor (RocksDB).

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_timers.py \\
        [--pending 20000] [--due 10000] [--rate 5000]

1. ``--pending`` dispatches are submitted with a one-day expiry: timers that
   stay pending for the whole run.
2. ``--due`` more dispatches get deadlines spread at ``--rate`` per second,
   starting a little after their submissions are folded.
Lateness is when step 1's SendMessage was written (broker timestamp) minus
the deadline, and the processor's own histogram of processing time minus
deadline. Peak RSS is the processor's VmHWM.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
EXPIRY_DUE = 15


def workflow(expiry: int) -> list[dict[str, object]]:
    return [{**ITEM, "failover": {"expiry_time": expiry, "condition_status": "delivered"}}, ITEM]


def rss_peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rss_now_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class SendCounter:
    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.step0 = 0
        self.step1: dict[uuid.UUID, float] = {}
        self.consumer = AIOKafkaConsumer(
            settings.topics.send,
            bootstrap_servers=settings.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    async def poll(self) -> None:
        batch = await self.consumer.getmany(timeout_ms=200)
        for messages in batch.values():
            for message in messages:
                command = decode_send(message.value)
                if command.step == 0:
                    self.step0 += 1
                else:
                    self.step1.setdefault(command.dispatch_uuid, message.timestamp / 1000)


async def wait(counter: SendCounter, done: object, process: Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline or not process.alive():
            raise SystemExit(f"stalled:\n{process.log()[-3000:]}")
        await counter.poll()


async def caught_up(settings: KafkaSettings, process: Process) -> None:
    """Until the processor has committed everything on dispatch.events (ticks
    keep coming, so 'everything' is a few records behind at most)."""
    group = settings.topics.events.removesuffix("dispatch.events") + "dispatch-processor"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    probe = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    await probe.start()
    try:
        partitions = [TopicPartition(settings.topics.events, p) for p in range(settings.partitions)]
        while process.alive():
            committed = await admin.list_consumer_group_offsets(group)
            ends = await probe.end_offsets(partitions)
            lag = sum(ends[tp] - (committed[tp].offset if tp in committed else 0) for tp in ends)
            if lag <= 4 * settings.partitions:
                return
            await asyncio.sleep(1)
    finally:
        await probe.stop()
        await admin.close()


def histogram_p99(metrics: str, name: str) -> float | None:
    buckets: list[tuple[float, float]] = []
    for line in metrics.splitlines():
        if line.startswith(f"{name}_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    for le, count in buckets:
        if count >= 0.99 * total:
            return le
    return None


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pending", type=int, default=20000)
    parser.add_argument("--due", type=int, default=10000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    settings = KafkaSettings(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        partitions=args.partitions,
        topics=Topics.from_prefix(f"bencht{uuid.uuid4().hex[:6]}."),
    )
    await ensure_topics(settings)
    tmp = Path(tempfile.mkdtemp(prefix="bench-timers-"))
    # More than one worker: the partitions (and their timers) are shared out.
    metrics_ports = [free_port() for _ in range(args.workers)]
    workers = [
        Process(
            f"processor-{n}",
            ["dispatch-processor"],
            {
                **kafka_env(settings),
                "PROCESSOR_DATA_DIR": str(tmp / f"data-{n}"),
                "PROCESSOR_METRICS_PORT": str(port),
            },
            tmp,
        )
        for n, port in enumerate(metrics_ports)
    ]
    process = workers[0]
    producer = make_producer(settings, linger_ms=20)
    counter = SendCounter(settings)
    await producer.start()
    await counter.consumer.start()
    try:
        for worker in workers:
            worker.wait_for_log("Worker]: Ready", timeout=90)
        baseline = rss_now_mib(process.popen.pid)
        pending = [uuid.uuid4() for _ in range(args.pending)]
        due = [uuid.uuid4() for _ in range(args.due)]
        started = time.perf_counter()
        futures = []
        for d in pending:
            key = str(d).encode()
            for event in (
                WorkflowRequested(dispatch_uuid=d, application_id="b", workflow=workflow(86400)),
                MessageSubmitted(
                    dispatch_uuid=d, step=0, command_id=command_id(str(d), 0), message_uuid=d.hex
                ),
            ):
                futures.append(await producer.send(settings.topics.events, encode(event), key=key))
        for d in due:
            event = WorkflowRequested(
                dispatch_uuid=d, application_id="b", workflow=workflow(EXPIRY_DUE)
            )
            futures.append(
                await producer.send(settings.topics.events, encode(event), key=str(d).encode())
            )
        await asyncio.gather(*futures)
        total = args.pending + args.due
        await wait(counter, lambda: counter.step0 >= total, process, timeout=max(900, total / 100))
        await caught_up(settings, process)
        loaded = time.perf_counter() - started
        rss_pending = rss_now_mib(process.popen.pid)
        print(
            f"{args.pending} pending timers armed (+{args.due} started) in {loaded:.0f}s; "
            f"RSS {baseline:.0f} MiB idle -> {rss_pending:.0f} MiB"
        )

        # Deadlines at `rate` per second, starting once their submissions are folded.
        lead = 5 + args.due / 1000  # time to fold the submissions and their echoes
        first_deadline = datetime.now(UTC) + timedelta(seconds=lead)
        deadlines: dict[uuid.UUID, datetime] = {}
        futures = []
        for i, d in enumerate(due):
            deadline = first_deadline + timedelta(seconds=i / args.rate)
            deadlines[d] = deadline
            event = MessageSubmitted(
                dispatch_uuid=d,
                step=0,
                command_id=command_id(str(d), 0),
                message_uuid=d.hex,
                occurred_at=deadline - timedelta(seconds=EXPIRY_DUE),
            )
            futures.append(
                await producer.send(settings.topics.events, encode(event), key=str(d).encode())
            )
        await asyncio.gather(*futures)
        await wait(counter, lambda: len(counter.step1) >= args.due, process, timeout=300)
        lateness = sorted(counter.step1[d] - deadlines[d].timestamp() for d in due)
        p50 = lateness[len(lateness) // 2]
        p99 = lateness[int(len(lateness) * 0.99) - 1]
        hist_p99: float | None = None
        tick_p99: float | None = None
        async with httpx.AsyncClient(timeout=5) as client:
            for port in metrics_ports:
                metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                fire = histogram_p99(metrics, "dispatch_timer_fire_delay_seconds")
                tick = histogram_p99(metrics, "dispatch_timer_lateness_seconds")
                hist_p99 = max(hist_p99 or 0.0, fire or 0.0)
                tick_p99 = max(tick_p99 or 0.0, tick or 0.0)
        print(
            f"{args.due} timers due at {args.rate}/s (over {args.due / args.rate:.1f}s): "
            f"lateness to SendMessage p50 {p50:.2f}s p99 {p99:.2f}s max {lateness[-1]:.2f}s, "
            f"min {lateness[0]:.2f}s; processor histogram p99 <= {hist_p99}s "
            f"(tick time minus deadline: p99 <= {tick_p99}s)"
        )
        # Whether the worker falls behind steadily (too slow) or stalls once.
        first_due = min(deadlines[d].timestamp() for d in due)
        by_second: dict[int, list[float]] = {}
        for d in due:
            second = int(deadlines[d].timestamp() - first_due)
            by_second.setdefault(second, []).append(counter.step1[d] - deadlines[d].timestamp())
        print(
            "p99 lateness by second due: "
            + " ".join(
                f"{sorted(v)[int(len(v) * 0.99) - 1]:.2f}" for _, v in sorted(by_second.items())
            )
        )
        peaks = ", ".join(f"{rss_peak_mib(w.popen.pid):.0f}" for w in workers)
        print(f"processor peak RSS {peaks} MiB ({args.workers} worker(s))")
    finally:
        await counter.consumer.stop()
        await producer.stop()
        for worker in workers:
            worker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
