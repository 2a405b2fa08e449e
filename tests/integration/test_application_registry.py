"""The registry loads what is on the topic at start and follows new records."""

from __future__ import annotations

import pytest

from events.applications import ApplicationRegistered
from events.codec import encode
from services.applications.registry import ApplicationRegistry
from services.kafka import KafkaSettings, make_producer
from tests.kafka_helpers import wait_for

pytestmark = pytest.mark.kafka


def _app(app_id: str, key: str) -> ApplicationRegistered:
    return ApplicationRegistered(
        application_id=app_id,
        name=app_id,
        api_key=key,
        api_secret_hash="salt$hash",
        status_url="http://127.0.0.1:1/status",
        final_report_url="http://127.0.0.1:1/final",
        signature_secret="s",
    )


async def test_loads_existing_and_follows_new_applications(kafka_settings: KafkaSettings) -> None:
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        first = _app("app-1", "key-1")
        await producer.send_and_wait(
            kafka_settings.topics.applications, encode(first), key=b"app-1"
        )
        registry = ApplicationRegistry(kafka_settings)
        await registry.start()
        try:
            await registry.wait_loaded(timeout=20)
            assert registry.get("app-1") == first
            assert registry.by_api_key("key-1") == first

            # A new application, and a re-keyed one, show up without a restart.
            await producer.send_and_wait(
                kafka_settings.topics.applications, encode(_app("app-2", "key-2")), key=b"app-2"
            )
            await producer.send_and_wait(
                kafka_settings.topics.applications, encode(_app("app-1", "key-1b")), key=b"app-1"
            )
            assert await wait_for(lambda: registry.get("app-2") is not None, timeout=10)
            assert await wait_for(lambda: registry.by_api_key("key-1b") is not None, timeout=10)
            assert registry.by_api_key("key-1") is None
        finally:
            await registry.stop()
    finally:
        await producer.stop()


async def test_an_empty_registry_counts_as_loaded(kafka_settings: KafkaSettings) -> None:
    registry = ApplicationRegistry(kafka_settings)
    await registry.start()
    try:
        await registry.wait_loaded(timeout=10)
        assert registry.loaded
    finally:
        await registry.stop()
