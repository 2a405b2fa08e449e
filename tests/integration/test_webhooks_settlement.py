"""When the deliverer commits a command's offset, and what it records on the
state topic: once the first attempt's outcome is durable (one record per
webhook), or a pending record once that attempt outlasts the grace. The real
``dispatch-webhooks`` process, the real broker and a real HTTP receiver."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from events.codec import encode
from events.commands import DeliverWebhook
from events.dispatch import WebhookDelivered
from services.kafka import KafkaSettings, make_producer
from services.webhooks.state import DeliveryState, decode_state, state_topic
from tests.integration.test_webhooks import (
    Answer,
    Receiver,
    arrived,
    command,
    deliverer_env,
    outcomes,
    register,
    start_deliverer,
)
from tests.kafka_helpers import read_records
from tests.processes import Process
from tests.waiting import holds_for, wait_until

pytestmark = pytest.mark.kafka


Placed = tuple[int, int]  # partition, offset


async def send(settings: KafkaSettings, commands: list[DeliverWebhook]) -> dict[uuid.UUID, Placed]:
    """Produce the commands; webhook id -> where each was written."""
    producer = make_producer(settings)
    await producer.start()
    placed: dict[uuid.UUID, Placed] = {}
    try:
        for c in commands:
            meta = await producer.send_and_wait(
                settings.topics.webhooks, encode(c), key=str(c.dispatch_uuid).encode()
            )
            placed[c.event_id] = (meta.partition, meta.offset)
    finally:
        await producer.stop()
    return placed


async def committed(settings: KafkaSettings) -> dict[int, int]:
    """The deliverer group's committed offset of every command partition."""
    prefix = settings.topics.events.removesuffix("dispatch.events")
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=prefix + "dispatch-webhooks",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        offsets = {}
        for partition in range(settings.partitions):
            tp = TopicPartition(settings.topics.webhooks, partition)
            offsets[partition] = await consumer.committed(tp) or 0
        return offsets
    finally:
        await consumer.stop()


async def committed_past(settings: KafkaSettings, placed: Placed) -> bool:
    partition, offset = placed
    return (await committed(settings))[partition] > offset


async def states_of(settings: KafkaSettings, webhook_id: uuid.UUID) -> list[DeliveryState]:
    """Every state record written for the webhook so far, oldest first."""
    topic = state_topic(settings)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        ends = await consumer.end_offsets(tps)
        wanted = {tp for tp in tps if ends[tp] > 0}
        if not wanted:
            return []

        def done(records: list[ConsumerRecord]) -> bool:
            read = {(r.partition, r.offset) for r in records}
            return all((tp.partition, ends[tp] - 1) in read for tp in wanted)

        records = await read_records(settings, topic, until=done)
    finally:
        await consumer.stop()
    states = [decode_state(r.value) for r in records if r.value is not None]
    return [s for s in states if s.webhook_id == webhook_id]


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0
) -> None:
    """Wait until an async check holds (polled; never a guessed sleep)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)


async def test_a_webhook_delivered_at_once_leaves_one_state_record_and_is_committed(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with Receiver() as receiver:
        await register(kafka_settings, "app-1", receiver.url("/status"), receiver.url("/final"))
        await start_deliverer(processes, tmp_path, deliverer_env(kafka_settings))
        webhook = command(uuid.uuid4())
        placed = await send(kafka_settings, [webhook])

        [event] = await outcomes(kafka_settings, 1)
        assert isinstance(event, WebhookDelivered) and event.attempts == 1
        await eventually(
            lambda: committed_past(kafka_settings, placed[webhook.event_id]),
            "the command's offset is committed",
        )
        states = await states_of(kafka_settings, webhook.event_id)
        assert [(s.phase, s.attempts) for s in states] == [("delivered", 1)]
        assert len(receiver.at("/status")) == 1


async def test_a_receiver_slower_than_the_grace_gets_a_pending_record_and_the_commit(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with Receiver() as receiver:
        receiver.scripts["/status"] = lambda n: Answer(200, delay_s=6)
        await register(kafka_settings, "app-1", receiver.url("/status"), receiver.url("/final"))
        env = deliverer_env(kafka_settings, WEBHOOK_PENDING_RECORD_AFTER_S="0.5")
        await start_deliverer(processes, tmp_path, env)
        webhook = command(uuid.uuid4())
        placed = await send(kafka_settings, [webhook])
        await arrived(lambda: len(receiver.at("/status")) == 1)

        # While the receiver still hangs: recorded as pending, offset committed.
        await eventually(
            lambda: committed_past(kafka_settings, placed[webhook.event_id]),
            "the command's offset is committed",
        )
        [request] = receiver.at("/status")
        assert request.answered_at == 0.0, "committed only once the receiver answered"
        states = await states_of(kafka_settings, webhook.event_id)
        assert [(s.phase, s.attempts) for s in states] == [("pending", 0)]

        # And it is still delivered, once, when the receiver answers.
        [event] = await outcomes(kafka_settings, 1)
        assert isinstance(event, WebhookDelivered) and event.attempts == 1
        states = await states_of(kafka_settings, webhook.event_id)
        assert [(s.phase, s.attempts) for s in states] == [("pending", 0), ("delivered", 1)]
        assert len(receiver.at("/status")) == 1


async def test_a_kill_9_mid_flight_resends_what_was_not_recorded_and_nothing_else(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    async with Receiver() as receiver:
        killed = asyncio.Event()
        # Hangs until the deliverer is killed (longer than any grace here),
        # then answers at once.
        receiver.scripts["/final"] = lambda n: Answer(200, delay_s=0 if killed.is_set() else 20)
        await register(kafka_settings, "app-1", receiver.url("/status"), receiver.url("/final"))
        env = deliverer_env(
            kafka_settings, WEBHOOK_PENDING_RECORD_AFTER_S="30", WEBHOOK_READ_TIMEOUT_S="30"
        )
        first = await start_deliverer(processes, tmp_path, env)
        done = [command(uuid.uuid4()) for _ in range(5)]
        await send(kafka_settings, done)
        await outcomes(kafka_settings, 5)
        in_flight = [command(uuid.uuid4(), "final") for _ in range(5)]
        await send(kafka_settings, in_flight)
        await arrived(lambda: len(receiver.at("/final")) == 5)

        first.kill9()
        killed.set()
        await start_deliverer(processes, tmp_path, env, name="webhooks-again")

        events = await outcomes(kafka_settings, 10, timeout=60)
        assert {e.webhook_id for e in events} == {c.event_id for c in done + in_flight}
        assert all(isinstance(e, WebhookDelivered) for e in events)
        # Each one in flight was sent again (same id); those delivered were not.
        await wait_until(lambda: len(receiver.at("/final")) == 10, what="the resends")
        finals = [r.webhook_id for r in receiver.at("/final")]
        assert sorted(finals) == sorted(2 * [str(c.event_id) for c in in_flight])
        await holds_for(lambda: len(receiver.at("/status")) == 5, 0.5, what="nothing else resent")
