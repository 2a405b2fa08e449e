"""An idle consumer asks the broker rarely, and still gets a record at once;
under a trickle of records a consumer fetches them in batches, each soon.

Against the real broker: the requests a consumer sends are counted as they
leave its client (a spy on ``client.send``; nothing is stubbed)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.protocol.fetch import FetchRequest

from services import fetch_wait
from services.kafka import FETCH_MAX_WAIT_MS, KafkaSettings, make_producer
from services.kafka_security import client_options
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


async def idle_consumer(settings: KafkaSettings) -> tuple[AIOKafkaConsumer, list[float]]:
    consumer = AIOKafkaConsumer(
        settings.topics.events,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        **client_options(),
    )
    await consumer.start()
    fetches = count_fetches(consumer)
    await wait_until(
        lambda: bool(consumer.assignment()), 30, what="the consumer has its partitions"
    )
    return consumer, fetches


def count_fetches(consumer: AIOKafkaConsumer) -> list[float]:
    """When each fetch request left the consumer's client."""
    fetches: list[float] = []
    client: Any = consumer._client
    send = client.send

    async def counting_send(node_id: int, request: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(request, FetchRequest):
            fetches.append(time.monotonic())
        return await send(node_id, request, *args, **kwargs)

    client.send = counting_send
    return fetches


async def test_an_idle_consumer_fetches_twice_a_second_not_twenty_times(
    kafka_settings: KafkaSettings,
) -> None:
    consumer, fetches = await idle_consumer(kafka_settings)
    try:
        reader = asyncio.create_task(consumer.getmany(timeout_ms=10_000))
        await asyncio.sleep(1)  # positions found, fetching
        counted_from = len(fetches)
        await asyncio.sleep(3)
        per_second = (len(fetches) - counted_from) / 3
        # 50 ms waits would be 20 a second; 500 ms waits are 2.
        assert per_second <= 3, f"{per_second:.1f} fetches a second while idle"
        reader.cancel()
    finally:
        await consumer.stop()


async def test_a_record_reaches_an_idle_consumer_without_waiting_out_the_fetch(
    kafka_settings: KafkaSettings,
) -> None:
    consumer, _ = await idle_consumer(kafka_settings)
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        await asyncio.sleep(1.3)  # a long fetch is in flight at the broker
        latencies = []
        for n in range(5):
            sent = time.monotonic()
            await producer.send_and_wait(
                kafka_settings.topics.events, f"r{n}".encode(), partition=n % 4
            )
            records = await consumer.getmany(timeout_ms=5_000)
            latencies.append(time.monotonic() - sent)
            assert sum(len(batch) for batch in records.values()) == 1
            await asyncio.sleep(0.7)  # idle again between records
        assert max(latencies) < 0.25, f"idle consumer latencies {latencies}"
    finally:
        await producer.stop()
        await consumer.stop()


async def test_a_trickle_of_records_is_fetched_in_batches_each_soon(
    kafka_settings: KafkaSettings,
) -> None:
    assert fetch_wait._gather_ms == 20  # the default, which this test is about
    consumer, fetches = await idle_consumer(kafka_settings)
    producer = make_producer(kafka_settings)
    await producer.start()
    latencies: list[float] = []
    try:
        await asyncio.sleep(1.3)  # a long fetch is in flight at the broker
        counted_from = len(fetches)
        sent = 200

        async def trickle() -> None:
            # One record every 5 ms, each its own produce request: 200 a second.
            for n in range(sent):
                await producer.send_and_wait(
                    kafka_settings.topics.events, repr(time.monotonic()).encode(), partition=n % 4
                )
                await asyncio.sleep(0.005)

        writer = asyncio.create_task(trickle())
        while len(latencies) < sent:
            batches = await consumer.getmany(timeout_ms=5_000)
            assert batches, "the trickle stopped reaching the consumer"
            now = time.monotonic()
            for records in batches.values():
                latencies.extend(now - float(r.value.decode()) for r in records)
        await writer
        fetched_with = len(fetches) - counted_from
        # Each record alone would take 200 fetches; gathering for 20 ms at a
        # time takes one per window that records arrived in.
        assert fetched_with <= sent / 2, f"{fetched_with} fetches for {sent} records"
        latencies.sort()
        assert latencies[-1] < 0.25, f"slowest record took {latencies[-1]:.3f}s"
        # Quiet again: back to the long idle wait, not a fetch every 20 ms.
        await asyncio.sleep(1)
        quiet_from = len(fetches)
        await asyncio.sleep(2)
        assert (len(fetches) - quiet_from) / 2 <= 3
    finally:
        await producer.stop()
        await consumer.stop()


async def test_a_follower_at_rest_fetches_rarely_and_still_gets_a_record_at_once(
    kafka_settings: KafkaSettings,
) -> None:
    consumer, fetches = await idle_consumer(kafka_settings)
    fetch_wait.rest_longer(consumer)
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        await asyncio.sleep(1)  # the short fetch in flight ends; a long one goes
        counted_from = len(fetches)
        await asyncio.sleep(4)
        assert len(fetches) - counted_from <= 2, "a follower at rest asks every 5 s at most"
        sent = time.monotonic()
        await producer.send_and_wait(kafka_settings.topics.events, b"r", partition=1)
        records = await consumer.getmany(timeout_ms=5_000)
        assert sum(len(batch) for batch in records.values()) == 1
        assert time.monotonic() - sent < 0.25
    finally:
        await producer.stop()
        await consumer.stop()


async def test_partitions_set_aside_do_not_make_an_idle_consumer_fetch_often(
    kafka_settings: KafkaSettings,
) -> None:
    # As faust does with the processor's restored changelogs: a consumer holds
    # partitions it does not read now, and aiokafka keeps a fetched batch of
    # each that nobody takes, so every later fetch leaves them out.
    producer = make_producer(kafka_settings)
    await producer.start()
    await producer.send_and_wait(kafka_settings.topics.webhooks, b"never taken", partition=0)
    await producer.stop()
    read = [TopicPartition(kafka_settings.topics.events, p) for p in range(4)]
    aside = TopicPartition(kafka_settings.topics.webhooks, 0)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        **client_options(),
    )
    await consumer.start()
    consumer.assign([*read, aside])
    fetches = count_fetches(consumer)
    reader = asyncio.create_task(consumer.getmany(*read, timeout_ms=60_000))

    async def fetches_a_second() -> float:
        counted_from = len(fetches)
        await asyncio.sleep(2)
        return (len(fetches) - counted_from) / 2

    try:
        await asyncio.sleep(1)  # positions found, the batch of ``aside`` buffered
        # Not named: every fetch looks like a busy consumer's partial one.
        assert await fetches_a_second() > 5
        fetch_wait.set_aside_when(lambda: {aside})
        await asyncio.sleep(0.6)  # the short fetch in flight ends
        assert await fetches_a_second() <= 3
    finally:
        fetch_wait.set_aside_when(None)
        reader.cancel()
        await consumer.stop()
