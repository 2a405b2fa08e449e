"""Pending timers moving between processors on a rebalance: seconds until
the partitions a worker is given are live on it, timers and all.

One processor holds ``--dispatches`` dispatches in flight, each with a timer
pending (a first step submitted, expiry one day). A second worker (empty
local state) then joins: the group hands it half the partitions, and it must
restore their tables (dispatch states and the deadline index) from the
changelog topics before it can act on them. Later it leaves (SIGTERM) and
the first worker takes its partitions back, catching up what it missed.

"Live" is measured per partition: a probe dispatch keyed to each partition is
requested right after the worker starts (or stops), and the time is until its
SendMessage appears, i.e. until that partition's owner has restored its state
and processes new events. A second probe per partition, with a 15 s expiry,
shows its timer fires on the new owner, and exactly once.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_timer_rebalance.py \\
        [--dispatches 100000]
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
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import murmur2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_processor_restart import WORKFLOW, start  # beside this script
from bench_timers import caught_up

from events.codec import decode_event, decode_send, encode
from events.dispatch import MessageSubmitted, WorkflowRequested
from events.topics import Topics
from services.failover.factories import command_id
from services.kafka import KafkaSettings, ensure_topics, make_producer
from tests.processes import Process

PARTITIONS = 8
SHORT = [{**WORKFLOW[0], "failover": {"expiry_time": 15, "condition_status": "delivered"}}]
SHORT.append(WORKFLOW[1])


def keyed_to_each_partition() -> list[uuid.UUID]:
    """One new dispatch id per partition (by the producer's own partitioner)."""
    found: dict[int, uuid.UUID] = {}
    while len(found) < PARTITIONS:
        d = uuid.uuid4()
        found.setdefault((murmur2(str(d).encode()) & 0x7FFFFFFF) % PARTITIONS, d)
    return [found[p] for p in range(PARTITIONS)]


class Follower:
    """Follows dispatch.send and dispatch.events: when each dispatch's first
    command showed up, and every StepTimedOut (by dispatch and step)."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.first_send: dict[uuid.UUID, float] = {}
        self.timed_out: Counter[tuple[uuid.UUID, int]] = Counter()
        self.consumer = AIOKafkaConsumer(
            settings.topics.send,
            settings.topics.events,
            bootstrap_servers=settings.bootstrap_servers,
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )

    async def run(self) -> None:
        await self.consumer.start()
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    if record.topic == self.settings.topics.send:
                        self.first_send.setdefault(decode_send(record.value).dispatch_uuid, now)
                    elif b'"StepTimedOut"' in (record.value or b""):
                        event = decode_event(record.value)
                        self.timed_out[(event.dispatch_uuid, event.step)] += 1  # type: ignore[attr-defined]


async def request(
    settings: KafkaSettings, dispatches: list[uuid.UUID], workflow: object, submitted: bool = False
) -> None:
    """Request each dispatch; ``submitted``: and play the sender's answer for
    its first step (a step's expiry runs from its submission)."""
    producer = make_producer(settings)
    await producer.start()
    for d in dispatches:
        key = str(d).encode()
        event = WorkflowRequested(dispatch_uuid=d, application_id="b", workflow=workflow)
        await producer.send_and_wait(settings.topics.events, encode(event), key=key)
        if submitted:
            answer = MessageSubmitted(
                dispatch_uuid=d, step=0, command_id=command_id(str(d), 0), message_uuid=d.hex
            )
            await producer.send_and_wait(settings.topics.events, encode(answer), key=key)
    await producer.stop()


async def until(condition: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"not within {timeout} s: {condition}")
        await asyncio.sleep(0.1)


class Prober:
    """Requests one dispatch on every partition every ``interval`` seconds and
    records how long each waited for its SendMessage: while a partition moves,
    its events (and its timers) wait."""

    def __init__(self, settings: KafkaSettings, follower: Follower, interval: float = 0.25):
        self.settings, self.follower, self.interval = settings, follower, interval
        self.requested: dict[uuid.UUID, tuple[int, float]] = {}  # dispatch → (partition, at)

    async def run(self, until: asyncio.Event) -> None:
        producer = make_producer(self.settings)
        await producer.start()
        try:
            while not until.is_set():
                for partition, d in enumerate(keyed_to_each_partition()):
                    event = WorkflowRequested(
                        dispatch_uuid=d, application_id="b", workflow=WORKFLOW
                    )
                    self.requested[d] = (partition, time.perf_counter())
                    await producer.send(
                        self.settings.topics.events, encode(event), key=str(d).encode()
                    )
                await asyncio.sleep(self.interval)
        finally:
            await producer.stop()

    async def longest_waits(self) -> list[float]:
        """Per partition, the longest a probe waited (once every probe is answered)."""
        await until(lambda: all(d in self.follower.first_send for d in self.requested))
        longest = [0.0] * PARTITIONS
        for d, (partition, at) in self.requested.items():
            longest[partition] = max(longest[partition], self.follower.first_send[d] - at)
        self.requested.clear()
        return longest


async def move(
    prober: Prober, change: Callable[[], Process | None], settle: Callable[[], bool]
) -> tuple[list[float], float]:
    """Probe through a change of the group; (longest wait per partition,
    seconds from the change until ``settle`` holds)."""
    stop_probing = asyncio.Event()
    probing = asyncio.create_task(prober.run(stop_probing))
    await asyncio.sleep(2)  # probes before the change: the steady state
    started = time.perf_counter()
    await asyncio.to_thread(change)
    await until(settle)
    settled = time.perf_counter() - started
    await asyncio.sleep(5)  # and after it
    stop_probing.set()
    await probing
    return await prober.longest_waits(), settled


async def fill(settings: KafkaSettings, count: int) -> None:
    producer = make_producer(settings, linger_ms=20)
    await producer.start()
    futures = []
    for _ in range(count):
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


def print_move(what: str, waits: list[float], settled: float, settle_what: str) -> None:
    print(
        f"{what}: {settle_what} after {settled:.1f} s; longest an event waited on a "
        f"partition {max(waits):.1f} s (per partition: {', '.join(f'{w:.1f}' for w in waits)})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dispatches", type=int, default=100_000)
    args = parser.parse_args()
    settings = KafkaSettings(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        partitions=PARTITIONS,
        topics=Topics.from_prefix(f"benchm{uuid.uuid4().hex[:6]}."),
    )
    await ensure_topics(settings)
    tmp = Path(tempfile.mkdtemp(prefix="bench-move-"))
    follower = Follower(settings)
    following = asyncio.create_task(follower.run())
    processes: list[Process] = []
    try:
        first = start(settings, tmp / "data-1", tmp, "processor-1")
        processes.append(first)
        await fill(settings, args.dispatches)
        await request(settings, keyed_to_each_partition(), WORKFLOW)
        await until(lambda: len(follower.first_send) >= PARTITIONS, 600)
        await caught_up(settings, first)
        print(f"{args.dispatches} dispatches in flight on one worker, each with a timer pending")
        prober = Prober(settings, follower)

        # Timers due 15 s from now, one per partition, fire on whoever owns it then.
        due_soon = keyed_to_each_partition()
        await request(settings, due_soon, SHORT, submitted=True)

        def join() -> Process:
            processes.append(start(settings, tmp / "data-2", tmp, "processor-2"))
            return processes[-1]

        waits, settled = await move(prober, join, lambda: "Worker]: Ready" in processes[-1].log())
        print_move("a second worker joins", waits, settled, "it was ready (tables restored)")
        second = processes[-1]
        await until(lambda: all((d, 0) in follower.timed_out for d in due_soon))
        await caught_up(settings, first)

        due_soon_2 = keyed_to_each_partition()
        await request(settings, due_soon_2, SHORT, submitted=True)
        waits, settled = await move(prober, second.stop, lambda: True)
        print_move("it leaves (SIGTERM)", waits, settled, "it had stopped")
        await until(lambda: all((d, 0) in follower.timed_out for d in due_soon_2))
        await asyncio.sleep(3)
        fired = [follower.timed_out[(d, 0)] for d in due_soon + due_soon_2]
        print(f"15 s timers armed before the moves: {len(fired)}, fired once: {fired.count(1)}")
    finally:
        following.cancel()
        await follower.consumer.stop()
        for process in processes:
            process.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
