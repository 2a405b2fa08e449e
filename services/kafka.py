"""Kafka plumbing shared by every process: settings, topic creation, producers."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from events.topics import Topics


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    # Partitions of dispatch.events (and so of the processor's tables); every
    # event of one dispatch lands on one partition, in order.
    partitions: int = 8
    topics: Topics = field(default_factory=Topics.from_env)

    @classmethod
    def from_env(cls) -> KafkaSettings:
        return cls(
            bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            partitions=int(os.environ.get("DISPATCH_PARTITIONS", "8")),
            topics=Topics.from_env(),
        )


def topic_specs(settings: KafkaSettings) -> list[NewTopic]:
    t = settings.topics
    forever = {"retention.ms": "-1"}
    return [
        # The log of record: kept forever, so any dispatch can be replayed.
        NewTopic(t.events, settings.partitions, 1, topic_configs=forever),
        NewTopic(t.send, settings.partitions, 1),
        NewTopic(t.webhooks, settings.partitions, 1),
        NewTopic(t.applications, 1, 1, topic_configs={"cleanup.policy": "compact"}),
        NewTopic(t.dead_letters, 1, 1, topic_configs=forever),
    ]


async def ensure_topics(settings: KafkaSettings) -> None:
    """Create the project's topics if they are missing (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        if missing:
            # Another process may have created them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()


def make_producer(settings: KafkaSettings, **overrides: object) -> AIOKafkaProducer:
    """A producer for writes that must not be lost: acks=all, idempotent."""
    options: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "acks": "all",
        "enable_idempotence": True,
        "linger_ms": 2,
        "request_timeout_ms": 10_000,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)
