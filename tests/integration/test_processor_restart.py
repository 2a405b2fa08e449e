"""Timers survive a kill -9 of the processor (RocksDB state, real broker),
also when its local state is lost and the tables come back from their
changelogs (which the processor writes itself, see ``changelog.py``)."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.kafka import KafkaSettings
from services.processor.config import ProcessorConfig
from tests.integration.processor_helpers import Driver, Watcher, item, start_processor
from tests.processes import Process, free_port

pytestmark = pytest.mark.kafka

DISPATCHES = 20
EXPIRY = 15


@pytest.mark.parametrize("local_state", ["kept", "wiped"])
async def test_pending_timers_fire_after_a_kill_9_and_restart(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path, local_state: str
) -> None:
    data = tmp_path / "data"
    metrics_port = free_port()
    first = start_processor(
        kafka_settings,
        data,
        tmp_path,
        name="processor-1",
        PROCESSOR_METRICS_PORT=str(metrics_port),
    )
    processes.append(first)
    driver, watcher = Driver(kafka_settings), Watcher(kafka_settings)
    await driver.start()
    await watcher.start()
    try:
        first.wait_for_log("Worker]: Ready", timeout=60)
        dispatches = [
            await driver.request([item(expiry=EXPIRY), item("whatsapp", None)])
            for _ in range(DISPATCHES)
        ]
        await watcher.until(lambda: all(watcher.steps_sent(d) == [0] for d in dispatches))
        submitted_at = time.time()
        for d in dispatches:
            await driver.submitted(d, 0)

        # Folded (the fold arms each expiry from its submission), maybe not committed.
        await until_processed(metrics_port, "MessageSubmitted", DISPATCHES)
        if local_state == "wiped":
            # Everything up to the armed timers committed: a restart cannot
            # rebuild them by reading the events again, only from the changelogs.
            await committed_past(kafka_settings, await end_offsets(kafka_settings))
        else:
            await asyncio.sleep(1.5)  # about one commit interval: typical, not required

        first.kill9()
        killed_at = time.time()
        # Stay down across the deadlines: every timer falls due while nobody runs.
        await asyncio.sleep(submitted_at + EXPIRY + 2 - time.time())
        assert not any(1 in watcher.steps_sent(d) for d in dispatches)
        if local_state == "wiped":
            shutil.rmtree(data)
        second = start_processor(kafka_settings, data, tmp_path, name="processor-2")
        processes.append(second)
        restarted_at = time.time()
        downtime = restarted_at - killed_at

        await watcher.until(
            lambda: all(watcher.steps_sent(d) == [0, 1] for d in dispatches), timeout=60
        )
        deadline = submitted_at + EXPIRY
        lateness = [float(watcher.send_time(d, 1) or 0) - deadline for d in dispatches]
        print(f"downtime {downtime:.1f}s, lateness max {max(lateness):.1f}s")
        assert min(lateness) >= -0.2  # never early
        assert max(lateness) <= downtime + 2
        # Each step was started once: one command id per (dispatch, step).
        ids = {(s.dispatch_uuid, s.step): s.event_id for _, s in watcher.sends}
        assert len({s.event_id for _, s in watcher.sends}) == len(ids) == 2 * DISPATCHES
    finally:
        await watcher.stop()
        await driver.stop()


async def end_offsets(settings: KafkaSettings) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(settings.topics.events, p) for p in range(settings.partitions)]
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def committed_past(settings: KafkaSettings, ends: dict[TopicPartition, int]) -> None:
    group = ProcessorConfig(kafka=settings).full_app_id
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        for _ in range(100):
            committed = {tp: await consumer.committed(tp) or 0 for tp in ends}
            if all(committed[tp] >= end for tp, end in ends.items()):
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"offsets not committed: {committed} < {ends}")
    finally:
        await consumer.stop()


async def until_processed(metrics_port: int, event_type: str, count: int) -> None:
    """Until the processor's metrics count ``count`` events of ``event_type`` folded."""
    line = f'dispatch_processor_events_total{{type="{event_type}"}}'
    async with httpx.AsyncClient() as client:
        for _ in range(100):
            metrics = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            folded = [float(m.split()[-1]) for m in metrics.splitlines() if m.startswith(line)]
            if folded and folded[0] >= count:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} {event_type} folded")
