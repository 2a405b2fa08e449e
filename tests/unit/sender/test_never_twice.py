"""A command is sent to the provider at most once, whatever the ledger says."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from events.base import utcnow
from events.codec import decode_event, encode
from events.commands import SendMessage
from events.dispatch import MessageOutcomeUnknown, MessageSubmitted
from events.topics import Topics
from services.kafka import KafkaSettings
from services.sender.config import SenderConfig
from services.sender.ledger import INTENT, Intent, Ledger, Retrying, ledger_topic, parse_entry
from services.sender.offsets import OffsetTracker
from services.sender.outcomes import Answer, Submitted, Transient
from services.sender.worker import SenderWorker

SETTINGS = KafkaSettings(topics=Topics.from_prefix("unit."))


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None]] = []
        self.headers: list[list[tuple[str, bytes]] | None] = []
        self.writes: list[int] = []  # records per send_all
        # Run once the first intent is written: what happens to the partition
        # while an intent is on its way to the broker.
        self.on_intent: Callable[[], None] = lambda: None

    async def send_and_wait(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.sent.append((topic, value, key))
        self.headers.append(headers)
        if b'"intent"' in value:
            self.on_intent()
            self.on_intent = lambda: None

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
        # Answers before the last one, which is always accepted.
        self.first_answers: list[Answer] = []

    async def submit(self, message: dict[str, Any], client_ref: str) -> Answer:
        # What the ledger held for the command at the moment of the call.
        assert self.command_id is not None
        self.calls.append((client_ref, self.ledger.get(self.command_id)))
        return self.first_answers.pop(0) if self.first_answers else Submitted("msg-1")


def _setup() -> tuple[SenderWorker, RecordingProducer, CountingProvider, Ledger]:
    producer = RecordingProducer()
    ledger = Ledger(SETTINGS, producer)
    provider = CountingProvider(ledger)
    config = SenderConfig(retry_initial_s=0.001, retry_max_s=0.001)
    worker = SenderWorker(config, SETTINGS, provider, producer, ledger)
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
    await worker._handle_record(record, OffsetTracker())  # type: ignore[arg-type]
    assert provider.calls == []
    ((topic, value, _),) = producer.sent
    assert topic == SETTINGS.topics.dead_letters and value == b"{oops"
    headers = dict(producer.headers[0] or [])
    assert headers["source"] == b"unit.dispatch.send:3:41"
    assert b"not JSON" in headers["reason"]


async def test_every_try_is_durable_before_it_is_made_and_its_refusal_after() -> None:
    worker, producer, provider, _ = _setup()
    command = _command()
    provider.command_id = command.event_id
    provider.first_answers = [Transient("provider answered HTTP 503", 503)]
    assert await worker.handle(command)
    (first, second) = provider.calls
    assert isinstance(first[1], Intent) and first[1].attempt == 1
    assert isinstance(second[1], Intent) and second[1].attempt == 2
    entries = [parse_entry(v) for v in producer.on(ledger_topic(SETTINGS))]
    assert [type(e).__name__ for e in entries] == [
        "Intent",
        "Retrying",
        "Intent",
        "MessageSubmitted",
    ]
    assert entries[1] == Retrying(first[1].at, 1, "provider answered HTTP 503", 503)  # type: ignore[arg-type]


async def test_a_sender_that_died_between_tries_is_succeeded_by_one_that_goes_on() -> None:
    # Every try so far was surely refused (a 503), so the next is no second
    # send: the successor makes it, where it used to give the step up as unknown.
    worker, producer, provider, ledger = _setup()
    command = _command()
    provider.command_id = command.event_id
    first_try = utcnow()
    ledger.apply(command.event_id, Retrying(first_try, 2, "provider answered HTTP 503", 503))
    assert await worker.handle(command)
    ((_, entry),) = provider.calls
    assert isinstance(entry, Intent)
    assert (entry.at, entry.attempt) == (first_try, 3)
    assert entry.attempt_at is not None and entry.attempt_at >= first_try
    (event,) = [decode_event(v) for v in producer.on(SETTINGS.topics.events)]
    assert isinstance(event, MessageSubmitted)


async def test_a_leaving_partition_stops_the_tries_and_leaves_its_command_unsettled() -> None:
    worker, producer, provider, ledger = _setup()
    command = _command()
    provider.command_id = command.event_id
    provider.first_answers = [Transient("provider answered HTTP 503", 503)]
    owned = iter([True, True])  # owned for the first try only

    assert not await worker.handle(command, owns=lambda: next(owned, False))
    assert len(provider.calls) == 1
    # Nothing settled: the next owner finds "retrying" and goes on from there.
    assert producer.on(SETTINGS.topics.events) == []
    assert isinstance(ledger.get(command.event_id), Retrying)


def test_records_read_late_never_take_a_send_back() -> None:
    _, _, _, ledger = _setup()
    command_id = uuid.uuid4()
    at = utcnow()
    ledger.apply(command_id, Intent(at, 2))
    ledger.apply(command_id, Retrying(at, 1, "503"))  # older: read back late
    ledger.apply(command_id, Intent(at, 1))
    assert ledger.get(command_id) == Intent(at, 2)
    ledger.apply(command_id, Retrying(at, 2, "503"))
    assert ledger.get(command_id) == Retrying(at, 2, "503")


def test_a_retrying_record_that_cannot_be_read_counts_as_a_call_in_flight() -> None:
    # Taking it for "nothing done yet" could make a second send.
    assert isinstance(parse_entry(b'{"state": "retrying", "attempts": "two"}'), Intent)
    damaged = parse_entry(b'{"state": "retrying", "attempts": 2, "at": "yesterday"}')
    assert damaged == Intent(None, 2)


async def test_a_rebalance_does_not_wait_out_a_backoff_nor_commit_past_it() -> None:
    producer = RecordingProducer()
    ledger = Ledger(SETTINGS, producer)
    provider = CountingProvider(ledger)
    provider.first_answers = [Transient("provider answered HTTP 503", 503)]
    config = SenderConfig(retry_initial_s=30, retry_max_s=30)
    worker = SenderWorker(config, SETTINGS, provider, producer, ledger, shutdown_grace_s=20)
    command = _command()
    provider.command_id = command.event_id
    tp = TopicPartition(SETTINGS.topics.send, 0)
    record = SimpleNamespace(topic=tp.topic, partition=0, offset=7, key=b"k", value=encode(command))
    await worker._slots.acquire()
    worker._tracker(tp).started(7)
    worker._enqueue(tp, record)  # type: ignore[arg-type]
    for _ in range(100):  # a few loop turns: the intent, the call, the refusal
        await asyncio.sleep(0)
    assert len(provider.calls) == 1
    tracker = worker._tracker(tp)
    # The send now backs off for 30 s; the revocation ends at once.
    async with asyncio.timeout(2):
        await worker.partitions_revoked([tp])
    assert len(provider.calls) == 1
    assert tracker.committable() == 7  # left to the next owner, not skipped
    assert producer.on(SETTINGS.topics.events) == []


async def test_an_unknown_outcome_waits_from_the_try_in_flight_not_the_first() -> None:
    # A step's deadline runs from when the call that may have been accepted
    # began: from the first try, a retried step could fail over too early.
    worker, producer, provider, ledger = _setup()
    command = _command()
    first_try = datetime(2026, 1, 1, 12, tzinfo=UTC)
    third_try = datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC)
    ledger.apply(command.event_id, Intent(first_try, 3, third_try))
    assert await worker.handle(command)
    assert provider.calls == []
    (event,) = [decode_event(v) for v in producer.on(SETTINGS.topics.events)]
    assert isinstance(event, MessageOutcomeUnknown)
    assert event.attempted_at == third_try


def test_an_intent_is_read_back_with_both_its_times() -> None:
    first_try = datetime(2026, 1, 1, 12, tzinfo=UTC)
    third_try = datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC)
    record = (
        b'{"state": "intent", "at": "2026-01-01T12:00:00+00:00", "attempt": 3,'
        b' "attempt_at": "2026-01-01T12:00:07+00:00"}'
    )
    assert parse_entry(record) == Intent(first_try, 3, third_try)
    # Written before the attempts were counted: the first, at its time.
    assert parse_entry(b'{"state": "intent", "at": "2026-01-01T12:00:00+00:00"}') == Intent(
        first_try
    )


async def test_a_revocation_that_begins_during_the_intent_waits_for_its_call() -> None:
    # Until the revocation ends no other sender can have read the ledger, so
    # a try whose intent is durable is made (and the revocation waits for it).
    worker, producer, provider, _ = _setup()
    command = _command()
    provider.command_id = command.event_id
    partition = {"leaving": False, "released": False}
    producer.on_intent = lambda: partition.update(leaving=True)
    settled = await worker.handle(
        command,
        owns=lambda: not partition["leaving"],
        holds=lambda: not partition["released"],
    )
    assert settled and len(provider.calls) == 1


async def test_a_revocation_that_ends_during_the_intent_stops_its_call() -> None:
    # The next owner may have read the ledger before this intent landed: a
    # call now could be the second. The send is left unknown instead.
    worker, producer, provider, ledger = _setup()
    command = _command()
    provider.command_id = command.event_id
    partition = {"leaving": False, "released": False}
    producer.on_intent = lambda: partition.update(leaving=True, released=True)
    settled = await worker.handle(
        command,
        owns=lambda: not partition["leaving"],
        holds=lambda: not partition["released"],
    )
    assert not settled and provider.calls == []
    assert isinstance(ledger.get(command.event_id), Intent)


class SeekingConsumer:
    def __init__(self, assigned: list[TopicPartition]) -> None:
        self.assigned = set(assigned)
        self.seeks: list[tuple[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


async def test_commands_are_handled_only_once_the_previous_owners_intents_are_read() -> None:
    # aiokafka fetches a newly assigned partition while the ledger is still
    # being read: a command handled then could be sent a second time.
    worker, _, _, ledger = _setup()
    tp0, tp1 = TopicPartition(SETTINGS.topics.send, 0), TopicPartition(SETTINGS.topics.send, 1)
    consumer = SeekingConsumer([tp0, tp1])
    seen_while_reading: list[bool] = []

    async def catch_up(timeout: float = 60.0) -> None:
        batch = {tp0: [SimpleNamespace(offset=5)], tp1: [SimpleNamespace(offset=9)]}
        seen_while_reading.append(worker.ready_records(batch, consumer))  # type: ignore[arg-type]
        assert batch == {}

    ledger.catch_up = catch_up  # type: ignore[method-assign]
    await worker.partitions_assigned([tp0, tp1])
    assert seen_while_reading == [False]
    assert consumer.seeks == [(tp0, 5), (tp1, 9)]  # fetched again once ready
    batch = {tp1: [SimpleNamespace(offset=9)]}
    assert worker.ready_records(batch, consumer)  # type: ignore[arg-type]
    assert list(batch) == [tp1]
    # And a revocation makes them wait again, from its first moment.
    await worker.partitions_revoked([tp1])
    assert not worker.ready_records({tp1: [SimpleNamespace(offset=9)]}, consumer)  # type: ignore[dict-item]
