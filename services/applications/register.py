"""Publishing an application record to the compacted registry topic."""

from __future__ import annotations

import asyncio

from events.applications import ApplicationRegistered
from events.codec import encode
from services.kafka import KafkaSettings, ensure_topics, make_producer

PRODUCE_TIMEOUT_S = 15.0


async def publish_application(settings: KafkaSettings, app: ApplicationRegistered) -> None:
    """Append ``app`` to the registry, acknowledged by Kafka (acks=all), or raise."""
    await asyncio.wait_for(ensure_topics(settings), PRODUCE_TIMEOUT_S)
    producer = make_producer(settings)
    await asyncio.wait_for(producer.start(), PRODUCE_TIMEOUT_S)
    try:
        await asyncio.wait_for(
            producer.send_and_wait(
                settings.topics.applications, encode(app), key=app.application_id.encode()
            ),
            PRODUCE_TIMEOUT_S,
        )
    finally:
        await producer.stop()
