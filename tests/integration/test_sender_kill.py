"""Never twice: a sender killed with SIGKILL mid-send, or after the send but
before its offset commit, does not send the step to the provider again when
the command is redelivered to its successor. Killed, or rebalanced away,
between tries the provider surely refused, the send goes on elsewhere, once.

Without the ledger, the restarted sender would call the provider a second time
for the redelivered command and the simulator would count two attempts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from events.dispatch import MessageOutcomeUnknown, MessageSubmitted
from events.references import client_ref
from services.kafka import KafkaSettings
from tests.integration.test_sender_support import (
    attempts,
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


async def _until_first_attempt(base_url: str, client_ref: str) -> None:
    """Until the provider has seen the first try (10 s at most)."""
    for _ in range(100):
        if await attempts(base_url, client_ref) == 1:
            return
        await asyncio.sleep(0.1)


async def test_killed_during_the_call_the_outcome_is_unknown_instead_of_a_second_send(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, {"9": {"latency_s": 3, "statuses": []}})
    _, base_url = start_simulator(processes, tmp_path, SIMULATOR_RULES=rules)
    first = start_sender(processes, kafka_settings, tmp_path, base_url, name="sender-1")
    command = sms_command("447700900009")
    ref = client_ref(command.dispatch_uuid, command.step)
    await send_commands(kafka_settings, [command])

    # The call is in flight at the provider (which takes 3 s to answer).
    await _until_first_attempt(base_url, ref)
    first.kill9()

    start_sender(processes, kafka_settings, tmp_path, base_url, name="sender-2")
    records = await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda rs: len(rs) >= 1, timeout=60
    )
    ((_, event),) = decoded(records)
    # Not a failure (the provider did accept it): the step waits as if
    # submitted, for a status naming its client_ref.
    assert isinstance(event, MessageOutcomeUnknown)
    assert "outcome unknown" in event.reason
    assert event.command_id == command.event_id
    # Give a wrong second send every chance to happen before counting.
    await asyncio.sleep(4)
    assert await attempts(base_url, ref) == 1


async def test_killed_before_the_commit_the_outcome_is_re_emitted_without_a_send(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    _, base_url = start_simulator(processes, tmp_path)
    # Never commits on its own: the command is bound to be redelivered.
    first = start_sender(
        processes,
        kafka_settings,
        tmp_path,
        base_url,
        name="sender-1",
        SENDER_COMMIT_INTERVAL_S="3600",
    )
    command = sms_command("447700900001")
    ref = client_ref(command.dispatch_uuid, command.step)
    await send_commands(kafka_settings, [command])
    await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda rs: len(rs) >= 1, timeout=30
    )
    first.kill9()

    start_sender(processes, kafka_settings, tmp_path, base_url, name="sender-2")
    records = await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda rs: len(rs) >= 2, timeout=60
    )
    events = [event for _, event in decoded(records)]
    assert len(events) == 2
    assert all(isinstance(e, MessageSubmitted) for e in events)
    # The same event twice (same id): consumers drop the duplicate.
    assert events[0] == events[1]
    assert await attempts(base_url, ref) == 1


async def test_killed_between_refused_tries_the_successor_goes_on_and_sends_once(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    # The provider answers 503 to the first two sends; the sender backs off
    # 2 s after the first. Killed then, it leaves "retrying" in its ledger, not
    # a call in flight, so its successor makes the next try itself.
    rules = write_rules(tmp_path, {"5": {"fail_attempts": 2, "statuses": []}})
    _, base_url = start_simulator(processes, tmp_path, SIMULATOR_RULES=rules)
    first = start_sender(
        processes, kafka_settings, tmp_path, base_url, name="sender-1", SENDER_RETRY_INITIAL_S="2"
    )
    command = sms_command("447700900005")
    ref = client_ref(command.dispatch_uuid, command.step)
    await send_commands(kafka_settings, [command])
    await _until_first_attempt(base_url, ref)
    await asyncio.sleep(0.5)  # the refusal is recorded; the backoff has begun
    first.kill9()

    start_sender(processes, kafka_settings, tmp_path, base_url, name="sender-2")
    records = await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda rs: len(rs) >= 1, timeout=60
    )
    ((_, event),) = decoded(records)
    assert isinstance(event, MessageSubmitted), event
    sends = await simulator_sends(base_url)
    assert sends["attempts"][ref] == 3  # two refused, then one accepted
    assert sends["accepted"][ref] == 1


async def test_a_send_between_tries_moves_with_its_partition_and_is_made_once(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    # A second sender joins while the first backs off between refused tries:
    # every partition is revoked and handed out again. The first stops the
    # send where it is, and whichever sender gets the partition goes on from
    # the ledger: one more refusal, then the one accepted send.
    rules = write_rules(tmp_path, {"5": {"fail_attempts": 2, "statuses": []}})
    _, base_url = start_simulator(processes, tmp_path, SIMULATOR_RULES=rules)
    slow_retries = {"SENDER_RETRY_INITIAL_S": "5"}
    first = start_sender(processes, kafka_settings, tmp_path, base_url, name="s1", **slow_retries)
    command = sms_command("447700900005")
    ref = client_ref(command.dispatch_uuid, command.step)
    await send_commands(kafka_settings, [command])
    await _until_first_attempt(base_url, ref)

    start_sender(processes, kafka_settings, tmp_path, base_url, name="s2", **slow_retries)
    first.wait_for_log("left to the partition's next owner", timeout=30)
    records = await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda rs: len(rs) >= 1, timeout=90
    )
    events = [event for _, event in decoded(records)]
    assert all(isinstance(e, MessageSubmitted) for e in events), events
    assert len({e.event_id for e in events}) == 1
    await asyncio.sleep(2)  # a second send, if any, would have been made by now
    sends = await simulator_sends(base_url)
    assert sends["attempts"][ref] == 3  # two refused, then one accepted
    assert sends["accepted"][ref] == 1
