"""Our dependencies work together on the real broker: aiokafka produces, a faust
worker folds into a changelog-backed RocksDB table, and after the worker's
local state is deleted, a restarted worker recovers the table from its
changelog topic.

How it would fail without the changelog: the consumer group's offsets are
committed at the end of the source topic before the restart (asserted below),
so the restarted worker reads no source event again; its table could only be
empty (the test times out waiting for the counts) — and if it did re-read the
source on top of a recovered table, the counts would double and not match.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.kafka import KafkaSettings, make_producer
from tests.processes import Process

pytestmark = pytest.mark.kafka

EXPECTED = {"alpha": 3, "beta": 2, "gamma": 1}


def _last_table(process: Process) -> dict[str, int] | None:
    lines = [line for line in process.log().splitlines() if "TABLE " in line]
    if not lines:
        return None
    return dict(orjson.loads(lines[-1].split("TABLE ", 1)[1]))


def _wait_for_table(process: Process, expected: dict[str, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _last_table(process) == expected:
            return
        if not process.alive():
            break
        time.sleep(0.3)
    raise AssertionError(
        f"table never became {expected}; last seen {_last_table(process)}\n{process.log()[-3000:]}"
    )


async def _committed_at_end(bootstrap: str, group: str, topic: str) -> bool:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(2)]
        ends = await consumer.end_offsets(tps)
        for tp in tps:
            if (await consumer.committed(tp) or 0) < ends[tp]:
                return False
        return True
    finally:
        await consumer.stop()


async def test_table_recovers_from_changelog_after_local_state_is_lost(
    kafka_bootstrap: str, tmp_path: Path, processes: list[Process]
) -> None:
    app_id = f"counter-{uuid.uuid4().hex[:8]}"
    topic = f"{app_id}-source"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()

    producer = make_producer(KafkaSettings(bootstrap_servers=kafka_bootstrap))
    await producer.start()
    try:
        for key, n in EXPECTED.items():
            for _ in range(n):
                await producer.send_and_wait(topic, b"+1", key=key.encode())
    finally:
        await producer.stop()

    data_dir = tmp_path / "faust-data"
    env = {
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "COUNTER_APP_ID": app_id,
        "COUNTER_TOPIC": topic,
        "COUNTER_DATA_DIR": str(data_dir),
    }
    worker_args = ["faust", "-A", "tests.integration.apps.counter", "worker", "-l", "warn"]

    first = Process("counter-1", worker_args, env, tmp_path)
    processes.append(first)
    _wait_for_table(first, EXPECTED)
    # Let the worker commit its source offsets, then stop it cleanly.
    for _ in range(40):
        if await _committed_at_end(kafka_bootstrap, app_id, topic):
            break
        await asyncio.sleep(0.5)
    first.stop(grace=20)
    assert await _committed_at_end(kafka_bootstrap, app_id, topic)

    # The local RocksDB state is gone: only the changelog can bring the counts back.
    shutil.rmtree(data_dir)
    assert not data_dir.exists()

    second = Process("counter-2", worker_args, env, tmp_path)
    processes.append(second)
    _wait_for_table(second, EXPECTED)
