"""Never twice, with a sender that is stopped rather than killed: frozen
(SIGSTOP) for longer than its session, it is dropped from the group and its
partition goes to another sender, which sends what it finds no intent for.
Thawed, the first sender finishes the call it had in flight and would go on
to the next command it had already fetched; it asks the group first, is
refused, and leaves the command alone."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import pytest

from events.references import client_ref
from services.kafka import KafkaSettings
from tests.integration.test_sender_support import (
    attempts,
    send_commands,
    simulator_sends,
    sms_command,
    start_sender,
    start_simulator,
    write_rules,
)
from tests.processes import Process

pytestmark = pytest.mark.kafka


async def _until_attempted(base_url: str, ref: str, timeout: float) -> None:
    for _ in range(int(timeout * 10)):
        if await attempts(base_url, ref) >= 1:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{ref} was never sent")


async def test_a_sender_frozen_past_its_session_does_not_send_what_its_successor_sent(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    # The first command takes the provider 3 s, and one send at a time means
    # the second (fetched already, the same partition) waits behind it.
    rules = write_rules(tmp_path, {"8": {"latency_s": 3, "statuses": []}, "2": {"statuses": []}})
    _, base_url = start_simulator(processes, tmp_path, SIMULATOR_RULES=rules)
    one_at_a_time = {"SENDER_CONCURRENCY": "1"}
    first = start_sender(processes, kafka_settings, tmp_path, base_url, name="s1", **one_at_a_time)
    dispatch = uuid.uuid4()
    slow = sms_command("447700900008", dispatch=dispatch, step=0)
    waiting = sms_command("447700900002", dispatch=dispatch, step=1)
    await send_commands(kafka_settings, [slow, waiting])
    await _until_attempted(base_url, client_ref(dispatch, 0), timeout=30)

    os.kill(first.popen.pid, signal.SIGSTOP)
    try:
        # Its session (10 s) runs out; the partition goes to the second sender,
        # which finds the first command's intent (its outcome unknown: no
        # call) and nothing for the second: it sends that one.
        start_sender(processes, kafka_settings, tmp_path, base_url, name="s2", **one_at_a_time)
        await _until_attempted(base_url, client_ref(dispatch, 1), timeout=60)
    finally:
        os.kill(first.popen.pid, signal.SIGCONT)

    # Thawed: the slow call completes, and the second command's turn comes.
    await asyncio.sleep(8)
    assert first.alive()
    sends = await simulator_sends(base_url)
    assert sends["attempts"][client_ref(dispatch, 0)] == 1
    assert sends["attempts"][client_ref(dispatch, 1)] == 1
