"""Decision latency of the processor with one dispatch at a time: from an input
being appended to dispatch.events to the processor's answer being appended.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_processor_latency.py [--n 40]

For each dispatch, in turn: append WorkflowRequested and wait for StepStarted;
append MessageSubmitted (nothing to wait for: it only arms a timer); append a
`delivered` status and wait for WorkflowCompleted. Both figures are broker
timestamps (input appended -> decision appended), so neither the driver's
producer nor the watcher's consumer is counted.
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

from events.base import utcnow
from events.codec import decode_event, encode
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


class Decisions:
    """Broker timestamps of every event on dispatch.events, by (dispatch, type)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.seen: dict[tuple[uuid.UUID, str], float] = {}
        self.consumer = AIOKafkaConsumer(
            settings.topics.events,
            bootstrap_servers=settings.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=5,
        )

    async def until(self, dispatch: uuid.UUID, kind: str, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while (dispatch, kind) not in self.seen:
            if time.monotonic() > deadline:
                raise SystemExit(f"no {kind} for {dispatch}")
            batch = await self.consumer.getmany(timeout_ms=50)
            for messages in batch.values():
                for message in messages:
                    event = decode_event(message.value)
                    if event.type != "Tick":
                        key = (event.dispatch_uuid, event.type)  # type: ignore[union-attr]
                        self.seen.setdefault(key, message.timestamp / 1000)
        return self.seen[(dispatch, kind)]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--store", default="rocksdb://")
    parser.add_argument("--idle", type=float, default=0.7, help="pause between dispatches (s)")
    args = parser.parse_args()
    settings = KafkaSettings(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        partitions=args.partitions,
        topics=Topics.from_prefix(f"benchl{uuid.uuid4().hex[:6]}."),
    )
    await ensure_topics(settings)
    tmp = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    process = Process(
        "processor",
        ["dispatch-processor"],
        {
            **kafka_env(settings),
            "PROCESSOR_DATA_DIR": str(tmp / "data"),
            "PROCESSOR_METRICS_PORT": str(free_port()),
            "PROCESSOR_STORE": args.store,
        },
        tmp,
    )
    producer = make_producer(settings, linger_ms=0)
    decisions = Decisions(settings)
    await producer.start()
    await decisions.consumer.start()
    workflow = [{**ITEM, "failover": {"expiry_time": 600, "condition_status": "delivered"}}, ITEM]
    start_lat: list[float] = []
    done_lat: list[float] = []
    try:
        process.wait_for_log("Worker]: Ready", timeout=90)
        for i in range(args.n + 2):
            await asyncio.sleep(args.idle)
            d = uuid.uuid4()
            key = str(d).encode()
            sent = await producer.send_and_wait(
                settings.topics.events,
                encode(WorkflowRequested(dispatch_uuid=d, application_id="b", workflow=workflow)),
                key=key,
            )
            try:
                started = await decisions.until(d, "StepStarted") - sent.timestamp / 1000
            except SystemExit:
                print(process.log()[-5000:])
                raise
            await producer.send_and_wait(
                settings.topics.events,
                encode(
                    MessageSubmitted(
                        dispatch_uuid=d,
                        step=0,
                        command_id=command_id(str(d), 0),
                        message_uuid=d.hex,
                    )
                ),
                key=key,
            )
            await asyncio.sleep(0.05)
            sent = await producer.send_and_wait(
                settings.topics.events,
                encode(
                    MessageStatusReceived(
                        dispatch_uuid=d, message_uuid=d.hex, status="delivered", timestamp=utcnow()
                    )
                ),
                key=key,
            )
            completed = await decisions.until(d, "WorkflowCompleted") - sent.timestamp / 1000
            if i >= 2:  # the first ones warm up the worker
                start_lat.append(started)
                done_lat.append(completed)
            if not process.alive():
                raise SystemExit(process.log()[-3000:])
        print(f"{args.n} dispatches one at a time, {args.partitions} partitions, {args.store}")
        for name, values in (
            ("WorkflowRequested -> StepStarted", start_lat),
            ("delivered status -> WorkflowCompleted", done_lat),
        ):
            print(
                f"{name}: p50 {1000 * percentile(values, 0.5):.0f} ms, "
                f"p90 {1000 * percentile(values, 0.9):.0f} ms, "
                f"max {1000 * max(values):.0f} ms"
            )
    finally:
        await decisions.consumer.stop()
        await producer.stop()
        process.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
