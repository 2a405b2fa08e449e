"""A sender that stood still long enough to be dropped from its group asks
the group before its next call; one that did not, calls without asking."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from events.commands import SendMessage
from events.topics import Topics
from services.kafka import KafkaSettings
from services.sender.config import SenderConfig
from services.sender.ledger import Intent, Ledger
from services.sender.offsets import OffsetTracker
from services.sender.stalls import StallWatch, suspect_after_s
from services.sender.worker import SenderWorker
from tests.unit.sender.test_never_twice import CountingProvider, RecordingProducer

SETTINGS = KafkaSettings(topics=Topics.from_prefix("unit."))
TP = TopicPartition(SETTINGS.topics.send, 3)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_stall_is_a_gap_the_session_may_not_have_outlived() -> None:
    # aiokafka's defaults: a 10 s session, a heartbeat every 3 s, stamped
    # every half second; a second of margin.
    assert suspect_after_s() == 5.5
    clock = Clock()
    watch = StallWatch(suspect_after=5.5, clock=clock)
    clock.now += 0.5
    watch.stamp()
    assert watch.stalls == 0 and not watch.stalled_since(0)
    clock.now += 5.5
    assert watch.stalled_since(0)  # under way, not stamped yet: it counts
    watch.stamp()
    assert watch.stalls == 1
    assert watch.stalled_since(0) and not watch.stalled_since(1)


class GroupConsumer:
    """The consumer's commit as the group answers it."""

    def __init__(self, member: bool) -> None:
        self.member = member
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)
        if not self.member:
            raise CommitFailedError("the group has rebalanced")


def _worker(member: bool) -> tuple[SenderWorker, Clock, GroupConsumer, OffsetTracker]:
    producer = RecordingProducer()
    ledger = Ledger(SETTINGS, producer)
    worker = SenderWorker(SenderConfig(), SETTINGS, CountingProvider(ledger), producer, ledger)
    clock = Clock()
    worker._stalls = StallWatch(suspect_after=5.5, clock=clock)
    consumer = GroupConsumer(member)
    worker._consumer = consumer  # type: ignore[assignment]
    tracker = OffsetTracker()
    for offset in (40, 41, 42):
        tracker.started(offset)
    tracker.finished(40)
    return worker, clock, consumer, tracker


async def test_without_a_stall_the_group_is_not_asked() -> None:
    worker, clock, consumer, tracker = _worker(member=True)
    clock.now += 5.0
    assert await worker._still_member(TP, tracker)
    assert consumer.commits == []


@pytest.mark.parametrize("member", [True, False])
async def test_after_a_stall_the_group_decides(member: bool) -> None:
    worker, clock, consumer, tracker = _worker(member)
    clock.now += 30.0  # stopped for longer than its session
    assert await worker._still_member(TP, tracker) is member
    # Asked with a commit at the first offset not settled: nothing skipped.
    assert consumer.commits == [{TP: 41}]
    # Once confirmed, later calls do not ask again (until the next stall).
    worker._stalls.stamp()
    assert await worker._still_member(TP, tracker) is member
    assert len(consumer.commits) == (1 if member else 2)


async def test_a_sender_dropped_while_it_stood_still_leaves_its_call_unmade() -> None:
    producer = RecordingProducer()
    ledger = Ledger(SETTINGS, producer)
    provider = CountingProvider(ledger)
    worker = SenderWorker(SenderConfig(), SETTINGS, provider, producer, ledger)
    command = SendMessage(
        event_id=uuid.uuid4(),
        dispatch_uuid=uuid.uuid4(),
        application_id="app",
        step=0,
        message={"to": {"type": "sms", "number": "447700900001"}},
    )
    provider.command_id = command.event_id

    async def dropped() -> bool:
        return False

    settled = await worker.handle(command, still_member=dropped)
    # Left to the partition's next owner, which finds the intent and waits
    # for the outcome instead of sending: at most once, never twice.
    assert not settled and provider.calls == []
    assert isinstance(ledger.get(command.event_id), Intent)
