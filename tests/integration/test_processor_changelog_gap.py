"""A crash between the local store write and the changelog record loses
nothing, even when the local state is later lost too.

The processor writes a dispatch's new state into its RocksDB before the
state's changelog record goes out. If it dies in between, the restarted
worker (local state kept) reads the event again and finds the state already
there; its offset is then committed. Unless that redelivery writes the state
again, the changelog never gets it, and a worker restoring from the
changelog later (another machine, a wiped volume) has no such dispatch: its
next events are dead-lettered and the client never hears the end of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.kafka import KafkaSettings
from tests.integration.processor_helpers import (
    Driver,
    Watcher,
    item,
    processor_env,
    start_processor,
)
from tests.integration.test_processor_restart import committed_past, end_offsets
from tests.processes import Process

pytestmark = pytest.mark.kafka


async def test_a_state_the_changelog_missed_survives_a_later_restore(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    dying = Process(
        "processor-1",
        ["python", "-m", "tests.integration.apps.processor_dying_between_store_and_changelog"],
        processor_env(kafka_settings, data),
        tmp_path,
    )
    processes.append(dying)
    driver, watcher = Driver(kafka_settings), Watcher(kafka_settings)
    await driver.start()
    await watcher.start()
    try:
        dying.wait_for_log("Worker]: Ready", timeout=60)
        d = await driver.request([item(expiry=60), item("whatsapp", None)])
        dying.popen.wait(timeout=30)
        assert dying.popen.returncode == 86  # died in the window, as arranged

        # Local state kept: the request is read again and re-asserted.
        second = start_processor(kafka_settings, data, tmp_path, name="processor-2")
        processes.append(second)
        await watcher.until(lambda: watcher.steps_sent(d) == [0], timeout=60)
        await committed_past(kafka_settings, await end_offsets(kafka_settings))
        second.stop()

        # The local state is lost: the tables come back from their changelogs.
        shutil.rmtree(data)
        third = start_processor(kafka_settings, data, tmp_path, name="processor-3")
        processes.append(third)
        third.wait_for_log("Worker]: Ready", timeout=60)
        m = await driver.submitted(d, 0)
        await driver.status(d, m, "delivered")
        await watcher.until(lambda: len(watcher.hooks(d, "final")) == 1, timeout=60)
        assert watcher.hooks(d, "final")[0]["status"] == "completed"
        assert "dead-lettered" not in third.log()
    finally:
        await watcher.stop()
        await driver.stop()
