"""Two processors share the partitions; one joins mid-stream and the other is
killed with timers pending in its partitions. Every dispatch still ends, each
step is started once and each dispatch gets one final report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.kafka import KafkaSettings
from tests.integration.processor_helpers import Driver, Watcher, item, start_processor
from tests.processes import Process

pytestmark = pytest.mark.kafka

DISPATCHES = 24
EXPIRY = 15


async def test_a_worker_joining_and_another_dying_lose_and_repeat_nothing(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    fast = {"PROCESSOR_SESSION_TIMEOUT_S": "6", "PROCESSOR_RECOVERY_STALL_S": "20"}
    first = start_processor(kafka_settings, tmp_path / "d1", tmp_path, name="processor-1", **fast)
    processes.append(first)
    driver, watcher = Driver(kafka_settings), Watcher(kafka_settings)
    await driver.start()
    await watcher.start()
    try:
        first.wait_for_log("Worker]: Ready", timeout=60)
        workflow = [item(expiry=EXPIRY), item("whatsapp", None)]
        early = [await driver.request(workflow) for _ in range(DISPATCHES // 2)]
        await watcher.until(lambda: all(watcher.steps_sent(d) == [0] for d in early))

        # A second worker joins: the group rebalances while dispatches keep coming.
        second = start_processor(
            kafka_settings, tmp_path / "d2", tmp_path, name="processor-2", **fast
        )
        processes.append(second)
        late = [await driver.request(workflow) for _ in range(DISPATCHES // 2)]
        everyone = early + late
        await watcher.until(lambda: all(watcher.steps_sent(d) == [0] for d in everyone), 90)
        second.wait_for_log("Worker]: Ready", timeout=60)

        # Half complete on their first message; the other half will time out.
        completing, timing_out = everyone[::2], everyone[1::2]
        for d in everyone:
            message = await driver.submitted(d, 0)
            if d in completing:
                await driver.status(d, message, "delivered")
        await watcher.until(lambda: all(watcher.hooks(d, "final") for d in completing), 30)

        # The first worker dies with timers pending; the second takes over its
        # partitions and fires them. Played as a supervisor would: a worker
        # that exits (its recovery watchdog) is started again on its data.
        first.kill9()
        restarts = 0

        def supervised() -> bool:
            nonlocal second, restarts
            if not second.alive():
                restarts += 1
                name = f"processor-2-restart-{restarts}"
                data = tmp_path / "d2"
                second = start_processor(kafka_settings, data, tmp_path, name=name, **fast)
                processes.append(second)
            return True

        await watcher.until(
            lambda: supervised() and all(watcher.steps_sent(d) == [0, 1] for d in timing_out), 120
        )
        for d in timing_out:
            message = await driver.submitted(d, 1)
            await driver.status(d, message, "delivered")
        await watcher.until(lambda: all(watcher.hooks(d, "final") for d in everyone), 60)
        await asyncio.sleep(2)  # anything repeated would show up by now

        assert second.alive()
        print(f"worker restarts by the supervisor: {restarts}")
        for d in everyone:
            [final] = watcher.hooks(d, "final")
            assert final["status"] == "completed"
            expected_steps = [0] if d in completing else [0, 1]
            assert watcher.steps_sent(d) == expected_steps
        # One command id per (dispatch, step): nothing started twice.
        ids = {(s.dispatch_uuid, s.step): s.event_id for _, s in watcher.sends}
        assert len({s.event_id for _, s in watcher.sends}) == len(ids)
        assert len(ids) == len(completing) + 2 * len(timing_out)
    finally:
        await watcher.stop()
        await driver.stop()
