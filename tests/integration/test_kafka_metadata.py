"""aiokafka and topics created while a client runs.

A producer keeps delivering to every topic it tracks when its metadata is
refreshed for a topic created after it started (what faust's changelogs do to
the processor's producer); without tracking, aiokafka forgets the older topic
and a batch waiting out its linger waits for a leader until its timeout. A
follower finds a topic that its first metadata answer did not have."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.kafka import (
    KafkaSettings,
    ensure_topics,
    follow_from_beginning,
    make_producer,
    track_topics,
)

pytestmark = pytest.mark.kafka


async def test_a_tracked_topic_is_delivered_across_a_refresh_for_a_new_topic(
    kafka_settings: KafkaSettings,
) -> None:
    await ensure_topics(kafka_settings)
    # Long linger: the batch is still waiting when the refresh replaces the metadata.
    producer = make_producer(kafka_settings, linger_ms=1000, request_timeout_ms=30_000)
    await producer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    try:
        # A refresh while the client tracks nothing fetches every topic (faust's
        # start-up does this): the send topic becomes known without being tracked.
        await producer.client.force_metadata_update()
        await track_topics(producer, [kafka_settings.topics.send])
        created_later = kafka_settings.topics.send + ".created-later"
        await admin.create_topics([NewTopic(created_later, 1, 1)])
        waiting = await producer.send(kafka_settings.topics.send, b"must arrive", key=b"k")
        # Unknown to the producer: tracked now, and the refresh asks for it.
        await producer.send(created_later, b"other")
        metadata = await asyncio.wait_for(waiting, timeout=15)
        assert metadata.topic == kafka_settings.topics.send
    finally:
        await admin.close()
        await producer.stop()


async def test_a_follower_finds_a_topic_created_after_it_subscribed(
    kafka_settings: KafkaSettings,
) -> None:
    # A topic created a moment before (or, here, after) the follower asks is
    # missing from its first metadata answer; it must ask again, not wait the
    # five minutes of aiokafka's metadata_max_age_ms.
    topic = kafka_settings.topics.events + ".created-after-subscribe"
    follower = asyncio.create_task(follow_from_beginning(kafka_settings, topic, "late-topic"))
    await asyncio.sleep(1.5)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        await admin.close()
    consumer = await asyncio.wait_for(follower, timeout=20)
    try:
        assert {tp.partition for tp in consumer.assignment()} == {0, 1}
    finally:
        await consumer.stop()
