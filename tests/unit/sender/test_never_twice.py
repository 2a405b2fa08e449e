"""A command is sent to the provider at most once, whatever the ledger says."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from events.codec import decode_event
from events.commands import SendMessage
from events.dispatch import MessageOutcomeUnknown, MessageSubmitted
from events.topics import Topics
from services.kafka import KafkaSettings
from services.sender.config import SenderConfig
from services.sender.ledger import INTENT, Intent, Ledger, ledger_topic
from services.sender.outcomes import Answer, Submitted
from services.sender.worker import SenderWorker

SETTINGS = KafkaSettings(topics=Topics.from_prefix("unit."))


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.headers: list[list[tuple[str, bytes]] | None] = []
        self.writes: list[int] = []  # records per send_all

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.sent.append((topic, value, key))
        self.headers.append(headers)

    async def send_all(self, records: list[tuple[str, bytes | None, bytes | None]]) -> None:
        self.writes.append(len(records))
        for topic, key, value in records:
            assert value is not None
            self.sent.append((topic, value, key))
            self.headers.append(None)

    def on(self, topic: str) -> list[bytes]:
        return [value for t, value, _ in self.sent if t == topic]


class CountingProvider:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.command_id: uuid.UUID | None = None
        self.calls: list[tuple[str, object]] = []

    async def submit(self, message: dict[str, Any], client_ref: str) -> Answer:
        # What the ledger held for the command at the moment of the call.
        assert self.command_id is not None
        self.calls.append((client_ref, self.ledger.get(self.command_id)))
        return Submitted("msg-1")


def _setup() -> tuple[SenderWorker, RecordingProducer, CountingProvider, Ledger]:
    producer = RecordingProducer()
    ledger = Ledger(SETTINGS, producer)
    provider = CountingProvider(ledger)
    worker = SenderWorker(SenderConfig(), SETTINGS, provider, producer, ledger)
    return worker, producer, provider, ledger


def _command() -> SendMessage:
    return SendMessage(
        event_id=uuid.uuid4(),
        dispatch_uuid=uuid.uuid4(),
        application_id="app",
        step=1,
        message={"to": {"type": "sms", "number": "447700900001"}},
    )


async def test_the_intent_is_durable_before_the_provider_is_called() -> None:
    worker, producer, provider, _ = _setup()
    command = _command()
    provider.command_id = command.event_id
    await worker.handle(command)
    ((ref, entry),) = provider.calls
    # The reference names the dispatch and step, so statuses route by it.
    assert ref == f"{command.dispatch_uuid}:1"
    assert isinstance(entry, Intent) and entry.at is not None
    events = [decode_event(v) for v in producer.on(SETTINGS.topics.events)]
    assert len(events) == 1
    assert isinstance(events[0], MessageSubmitted)
    assert events[0].message_uuid == "msg-1"
    assert events[0].command_id == command.event_id


async def test_the_outcome_and_its_event_are_one_write() -> None:
    worker, producer, provider, ledger = _setup()
    command = _command()
    provider.command_id = command.event_id
    await worker.handle(command)
    # Intent alone, then the ledger's outcome and the event together: two
    # produce requests a send, not three.
    assert producer.writes == [2]
    assert [topic for topic, _, _ in producer.sent] == [
        ledger_topic(SETTINGS),
        ledger_topic(SETTINGS),
        SETTINGS.topics.events,
    ]
    assert isinstance(ledger.get(command.event_id), MessageSubmitted)


async def test_a_redelivered_command_re_emits_its_outcome_without_a_call() -> None:
    worker, producer, provider, _ = _setup()
    command = _command()
    provider.command_id = command.event_id
    await worker.handle(command)
    await worker.handle(command)
    assert len(provider.calls) == 1
    first, second = producer.on(SETTINGS.topics.events)
    assert first == second  # same event, same id: consumers drop the duplicate


async def test_a_command_whose_outcome_is_unknown_waits_instead_of_sending_again() -> None:
    worker, producer, provider, ledger = _setup()
    command = _command()
    attempted = datetime(2026, 1, 1, 12, tzinfo=UTC)
    ledger.apply(command.event_id, Intent(attempted))  # a sender died during the call
    await worker.handle(command)
    assert provider.calls == []
    (event,) = [decode_event(v) for v in producer.on(SETTINGS.topics.events)]
    # Not a failure: the provider may have accepted it; the step waits as if
    # submitted at the attempt, for a status naming its client_ref.
    assert isinstance(event, MessageOutcomeUnknown)
    assert event.attempted_at == attempted
    assert "outcome unknown" in event.reason
    assert producer.sent[-1][2] == str(command.dispatch_uuid).encode()


def test_a_late_intent_never_hides_an_outcome() -> None:
    _, _, _, ledger = _setup()
    command_id = uuid.uuid4()
    outcome = MessageSubmitted(
        dispatch_uuid=uuid.uuid4(), step=0, command_id=command_id, message_uuid="m"
    )
    ledger.apply(command_id, outcome)
    ledger.apply(command_id, INTENT)
    assert ledger.get(command_id) == outcome


async def test_an_unreadable_command_is_dead_lettered_with_its_reason_and_source() -> None:
    worker, producer, provider, _ = _setup()
    record = SimpleNamespace(topic="unit.dispatch.send", partition=3, offset=41, value=b"{oops")
    await worker._handle_record(record)  # type: ignore[arg-type]
    assert provider.calls == []
    ((topic, value, _),) = producer.sent
    assert topic == SETTINGS.topics.dead_letters and value == b"{oops"
    headers = dict(producer.headers[0] or [])
    assert headers["source"] == b"unit.dispatch.send:3:41"
    assert b"not JSON" in headers["reason"]
