"""Changing a registered application: the current record is read back from
the compacted registry topic, changed, and published again (or tombstoned to
revoke). Running processes follow the topic and apply it within a second or
two (the registry's fetch wait is 0.5 s)."""

from __future__ import annotations

import asyncio

from events.applications import ApplicationRegistered
from services.applications.register import PRODUCE_TIMEOUT_S, publish_application
from services.applications.registry import ApplicationRegistry
from services.applications.sealing import SecretKeys
from services.kafka import KafkaSettings, ensure_topics, make_producer


class UnknownApplication(LookupError):
    pass


async def current(settings: KafkaSettings, application_id: str) -> ApplicationRegistered:
    """The application's latest record (its signature secret opened, so that
    publishing it again re-seals it with the active key)."""
    await asyncio.wait_for(ensure_topics(settings), PRODUCE_TIMEOUT_S)
    registry = ApplicationRegistry(settings, SecretKeys.from_env())
    await asyncio.wait_for(registry.start(), PRODUCE_TIMEOUT_S)
    try:
        await registry.wait_loaded(timeout=60)
        found = registry.get(application_id)
    finally:
        await registry.stop()
    if found is None:
        raise UnknownApplication(f"no application {application_id} (or it was revoked)")
    return found


async def update(settings: KafkaSettings, application_id: str, **changes: object) -> None:
    app = await current(settings, application_id)
    await publish_application(settings, app.model_copy(update=changes))


async def revoke(settings: KafkaSettings, application_id: str) -> None:
    """A tombstone: every process forgets the application; compaction later
    removes its record (and so its hashes and sealed secret) from the topic."""
    await current(settings, application_id)  # refuse ids that do not exist
    producer = make_producer(settings)
    await asyncio.wait_for(producer.start(), PRODUCE_TIMEOUT_S)
    try:
        await asyncio.wait_for(
            producer.send_and_wait(settings.topics.applications, None, key=application_id.encode()),
            PRODUCE_TIMEOUT_S,
        )
    finally:
        await producer.stop()
