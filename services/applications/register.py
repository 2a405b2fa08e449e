"""Publishing an application record to the compacted registry topic."""

from __future__ import annotations

import asyncio

from events.applications import ApplicationRegistered
from events.codec import encode
from services.applications.sealing import KEYS_VARIABLE, SealingError, SecretKeys, is_sealed
from services.kafka import KafkaSettings, ensure_topics, make_producer

PRODUCE_TIMEOUT_S = 15.0


def sealed(app: ApplicationRegistered, keys: SecretKeys | None) -> ApplicationRegistered:
    """``app`` with its signature secret sealed (SealingError without keys:
    it is never written in clear)."""
    if is_sealed(app.signature_secret):
        return app
    if keys is None:
        raise SealingError(
            f"{KEYS_VARIABLE} is not set: signature secrets are stored sealed with it "
            "(docs/security.md)"
        )
    return app.model_copy(update={"signature_secret": keys.seal(app.signature_secret)})


async def publish_application(settings: KafkaSettings, app: ApplicationRegistered) -> None:
    """Append ``app`` to the registry, its signature secret sealed with the
    configured key, acknowledged by Kafka (acks=all), or raise."""
    app = sealed(app, SecretKeys.from_env())
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
