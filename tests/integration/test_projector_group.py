"""Projectors share one PostgreSQL store as one consumer group: each follows
the partitions it is given; when one is killed -9 mid-stream another takes its
partitions over from the store's offsets, a projector that joins takes half of
them, and the read model ends exactly as a fresh replay of the log builds it."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from events.codec import encode
from services.kafka import KafkaSettings, make_producer
from tests.conftest import kafka_env
from tests.fixtures_events import failover_history, rejected_history
from tests.integration.test_projector import _cli
from tests.processes import Process, free_port

pytestmark = pytest.mark.kafka


async def _end_offsets(settings: KafkaSettings) -> dict[int, int]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topics.events, p) for p in range(settings.partitions)]
        return {tp.partition: offset for tp, offset in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


async def _positions(url: str) -> dict[int, int]:
    db = await asyncpg.connect(url)
    try:
        rows = await db.fetch("SELECT partition, next_offset FROM positions")
        return {row[0]: row[1] for row in rows}
    finally:
        await db.close()


async def _wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def _start(settings: KafkaSettings, url: str, tmp: Path, name: str) -> tuple[Process, int]:
    port = free_port()
    env = {**kafka_env(settings), "PROJECTOR_STORE_URL": url, "PROJECTOR_PORT": str(port)}
    process = Process(name, ["dispatch-projector"], env, tmp)
    process.wait_for_port(port)
    return process, port


def _followed(process: Process) -> list[str]:
    return [line for line in process.log().splitlines() if "following partitions" in line]


async def test_projectors_killed_and_joining_mid_stream_equal_a_fresh_replay(
    kafka_settings: KafkaSettings,
    postgres_url: str,
    tmp_path: Path,
    processes: list[Process],
) -> None:
    first, _ = _start(kafka_settings, postgres_url, tmp_path, "projector-a")
    processes.append(first)
    second, second_port = _start(kafka_settings, postgres_url, tmp_path, "projector-b")
    processes.append(second)

    # The group has formed when each follows some of the partitions.
    async def split() -> bool:
        a, b = _followed(first), _followed(second)
        return bool(a and b and "[]" not in a[-1] and "[]" not in b[-1])

    await _wait_for(split, 60, f"the partitions split\n{first.log()}\n{second.log()}")

    completed: list[uuid.UUID] = []
    failed: list[uuid.UUID] = []
    stop_producing = asyncio.Event()

    async def produce() -> None:
        # Dispatches keep arriving through the kill and both rebalances.
        producer = make_producer(kafka_settings)
        await producer.start()
        try:
            while not stop_producing.is_set():
                dispatch = uuid.uuid4()
                ok = len(completed) <= len(failed)
                (completed if ok else failed).append(dispatch)
                history = failover_history(dispatch) if ok else rejected_history(dispatch)
                for event in history:
                    await producer.send_and_wait(
                        kafka_settings.topics.events, encode(event), key=str(dispatch).encode()
                    )
                await asyncio.sleep(0.05)
        finally:
            await producer.stop()

    producing = asyncio.create_task(produce())

    # Kill one projector once both have written.
    async def both_written() -> bool:
        return len(await _positions(postgres_url)) == kafka_settings.partitions

    await _wait_for(both_written, 60, "every partition projected at least once")
    first.kill9()
    written_before_kill = len(completed) + len(failed)

    # The survivor is given every partition.
    everything = str(list(range(kafka_settings.partitions)))

    async def survivor_follows_all() -> bool:
        return bool(_followed(second)) and _followed(second)[-1].endswith(everything)

    await _wait_for(survivor_follows_all, 60, f"takeover\n{second.log()}")

    # A new projector joins while records flow: the survivor hands half over
    # with batches in hand (an orderly rebalance this time).
    third, _ = _start(kafka_settings, postgres_url, tmp_path, "projector-c")
    processes.append(third)

    async def split_again() -> bool:
        return bool(_followed(third)) and "[]" not in _followed(third)[-1]

    await _wait_for(split_again, 60, f"the partitions split again\n{third.log()}")
    await asyncio.sleep(1)  # a few more dispatches after the second rebalance
    stop_producing.set()
    await producing
    assert len(completed) + len(failed) > written_before_kill, "nothing flowed after the kill"

    ends = await _end_offsets(kafka_settings)

    async def caught_up() -> bool:
        return await _positions(postgres_url) == ends

    await _wait_for(caught_up, 60, f"the store reaches {ends}\n{second.log()}")

    # What a user reads: every dispatch, with its full history once.
    for dispatch, status in [(completed[-1], "completed"), (failed[-1], "error")]:
        base = f"http://127.0.0.1:{second_port}/internal/dispatches/{dispatch}"
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(base)).json()["status"] == status
            events = (await client.get(f"{base}/events")).json()["events"]
        expected = (
            failover_history(dispatch) if status == "completed" else rejected_history(dispatch)
        )
        assert [e["type"] for e in events] == [e.type for e in expected]

    replayed = _cli(kafka_settings, second_port, postgres_url, "replay", "--no-decisions")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replay equals live" in replayed.stdout
