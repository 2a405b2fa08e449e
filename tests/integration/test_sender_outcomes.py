"""The real sender against the real simulator over HTTP: every outcome class
becomes the right event, slow sends do not stall the rest, and a dispatch's
events keep their order."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from pathlib import Path

import pytest

from events.commands import SendMessage
from events.dispatch import MessageOutcomeUnknown, MessageSendFailed, MessageSubmitted
from events.references import client_ref
from services.kafka import KafkaSettings
from tests.integration.test_sender_support import (
    decoded,
    send_commands,
    simulator_sends,
    sms_command,
    start_sender,
    start_simulator,
    write_rules,
)
from tests.kafka_helpers import read_records
from tests.processes import Process

pytestmark = pytest.mark.kafka


async def test_each_outcome_class_becomes_its_event(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    rules = write_rules(
        tmp_path,
        {
            "6": {"fail_attempts": 1000, "fail_http_status": 503},  # down for good
            "8": {"latency_s": 1.5, "statuses": []},  # slow to answer
        },
    )
    _, base_url = start_simulator(
        processes,
        tmp_path,
        SIMULATOR_RULES=rules,
        SIMULATOR_API_KEY="key",
        SIMULATOR_API_SECRET="secret",
    )
    start_sender(processes, kafka_settings, tmp_path, base_url, SENDER_RETRY_BUDGET_S="2")

    slow_dispatch = uuid.uuid4()
    slow = sms_command("447700900008", dispatch=slow_dispatch, step=0)
    after_slow = sms_command("447700900001", dispatch=slow_dispatch, step=1)
    accepted = sms_command("447700900000")
    refused = sms_command("447700900002")
    flaky = sms_command("447700900005")
    down = sms_command("447700900006")
    commands = [slow, after_slow, accepted, refused, flaky, down]
    await send_commands(kafka_settings, commands)

    records = await read_records(
        kafka_settings,
        kafka_settings.topics.events,
        until=lambda rs: len(rs) >= len(commands),
        timeout=30,
    )
    events = {event.command_id: (partition, event) for partition, event in decoded(records)}  # type: ignore[attr-defined]
    assert len(events) == len(commands)

    submitted = events[accepted.event_id][1]
    assert isinstance(submitted, MessageSubmitted)
    assert submitted.dispatch_uuid == accepted.dispatch_uuid
    assert submitted.step == 0

    rejection = events[refused.event_id][1]
    assert isinstance(rejection, MessageSendFailed)
    assert (rejection.http_status, rejection.error.code) == (422, 1020)
    assert rejection.error.reason

    # 503, 503, then accepted: retried, and still only one accepted send.
    assert isinstance(events[flaky.event_id][1], MessageSubmitted)
    sends = await simulator_sends(base_url)
    assert sends["attempts"][ref(flaky)] == 3
    assert sends["accepted"][ref(flaky)] == 1

    gave_up = events[down.event_id][1]
    assert isinstance(gave_up, MessageSendFailed)
    assert gave_up.http_status == 503
    assert "gave up" in gave_up.error.reason

    # The slow call did not hold up the other dispatches...
    slow_partition, slow_event = events[slow.event_id]
    assert submitted.occurred_at < slow_event.occurred_at
    # ...but its own dispatch's next step waited for it, on the same partition.
    next_partition, next_event = events[after_slow.event_id]
    assert slow_partition == next_partition
    order = [e.command_id for p, e in decoded(records) if p == slow_partition]  # type: ignore[attr-defined]
    assert order.index(slow.event_id) < order.index(after_slow.event_id)
    assert slow_event.occurred_at < next_event.occurred_at

    # Every command reached the provider with its dispatch and step as client_ref.
    assert set(sends["attempts"]) == {ref(c) for c in commands}


def ref(command: SendMessage) -> str:
    return client_ref(command.dispatch_uuid, command.step)


async def test_a_provider_that_accepts_after_the_read_timeout_gets_the_step_once(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    # The provider takes 2 s to answer, the sender waits 0.5 s: the message is
    # accepted, but the sender cannot know. Retrying would send it twice.
    rules = write_rules(
        tmp_path, {"7": {"latency_s": 2, "statuses": [{"after_s": 0, "status": "delivered"}]}}
    )
    _, base_url = start_simulator(processes, tmp_path, SIMULATOR_RULES=rules)
    start_sender(processes, kafka_settings, tmp_path, base_url, PROVIDER_READ_TIMEOUT_S="0.5")
    slow = sms_command("447700900007")
    await send_commands(kafka_settings, [slow])
    records = await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda rs: len(rs) >= 1, timeout=30
    )
    ((_, event),) = decoded(records)
    assert isinstance(event, MessageOutcomeUnknown)
    assert event.command_id == slow.event_id
    assert "no answer" in event.reason
    # Long enough for any retry (0.1 s backoff) to have reached the provider.
    for _ in range(40):
        sends = await simulator_sends(base_url)
        if sends["accepted"].get(ref(slow)):
            break
        await asyncio.sleep(0.1)
    assert sends["attempts"][ref(slow)] == 1
    assert sends["accepted"][ref(slow)] == 1


async def test_an_unreachable_provider_fails_the_step_after_the_budget(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    from tests.processes import free_port

    closed = f"http://127.0.0.1:{free_port()}"
    start_sender(
        processes,
        kafka_settings,
        tmp_path,
        closed,
        SENDER_RETRY_BUDGET_S="1.5",
        PROVIDER_CONNECT_TIMEOUT_S="0.5",
    )
    command = sms_command("447700900001")
    await send_commands(kafka_settings, [command])
    records = await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda rs: len(rs) >= 1, timeout=20
    )
    ((_, event),) = decoded(records)
    assert isinstance(event, MessageSendFailed)
    assert event.http_status is None
    assert "unreachable" in event.error.reason


async def test_sender_and_simulator_exit_promptly_on_sigterm(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    simulator, base_url = start_simulator(processes, tmp_path)
    sender = start_sender(processes, kafka_settings, tmp_path, base_url)
    for process in (sender, simulator):
        started = time.monotonic()
        process.popen.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert process.popen.wait(timeout=15) in (0, -signal.SIGTERM)
        assert time.monotonic() - started < 8, f"{process.name} took too long to stop"
