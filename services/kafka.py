"""Kafka plumbing shared by every process: settings, topic creation, producers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from events.topics import Topics
from services.kafka_security import client_options

# The longest a fetch waits at the broker for data (aiokafka's default: 500 ms).
# A consumer keeps one fetch in flight per broker, and the fetch sent while
# some partitions' records are still being handled holds only the others: when
# those are empty, the broker keeps it the whole wait and nothing new arrives
# meanwhile, on any partition. The wait bounds that stall; a fetch that finds
# data returns at once. An idle consumer asks 1 / 50 ms = 20 times a second.
FETCH_MAX_WAIT_MS = 50


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    # Partitions of dispatch.events (and so of the processor's tables); every
    # event of one dispatch lands on one partition, in order.
    partitions: int = 8
    topics: Topics = field(default_factory=Topics.from_env)
    # Copies of every partition of every topic the project creates, and how many
    # of them must have a write before it counts (with acks=all). 1 / broker
    # default on a single broker; 3 / 2 on a cluster (see docs/operations.md).
    replication_factor: int = 1
    min_insync_replicas: int | None = None

    def __post_init__(self) -> None:
        if self.replication_factor < 1:
            raise ValueError(
                f"DISPATCH_REPLICATION_FACTOR must be at least 1, not {self.replication_factor}"
            )
        min_isr = self.min_insync_replicas
        if min_isr is not None and not 1 <= min_isr <= self.replication_factor:
            # More than the replicas there are would refuse every write.
            raise ValueError(
                f"DISPATCH_MIN_INSYNC_REPLICAS must be between 1 and the replication "
                f"factor ({self.replication_factor}), not {min_isr}"
            )

    @classmethod
    def from_env(cls) -> KafkaSettings:
        min_isr = _whole_number("DISPATCH_MIN_INSYNC_REPLICAS", "")
        replicas = _whole_number("DISPATCH_REPLICATION_FACTOR", "1")
        return cls(
            bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            partitions=int(os.environ.get("DISPATCH_PARTITIONS", "8")),
            topics=Topics.from_env(),
            replication_factor=1 if replicas is None else replicas,
            min_insync_replicas=min_isr,
        )


def _whole_number(variable: str, default: str) -> int | None:
    """The integer in ``variable`` (None when empty); a start-up error naming it otherwise."""
    value = os.environ.get(variable, default).strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{variable} must be a whole number, not {value!r}") from None


def new_topic(
    settings: KafkaSettings,
    name: str,
    partitions: int,
    configs: dict[str, str] | None = None,
    *,
    replication_factor: int | None = None,
) -> NewTopic:
    """A topic replicated as the settings say; every topic the project creates
    is made here. Without a configured min ISR the broker's default applies."""
    topic_configs = dict(configs or {})
    if settings.min_insync_replicas is not None:
        topic_configs["min.insync.replicas"] = str(settings.min_insync_replicas)
    replicas = replication_factor or settings.replication_factor
    return NewTopic(name, partitions, replicas, topic_configs=topic_configs)


def topic_specs(settings: KafkaSettings) -> list[NewTopic]:
    t = settings.topics
    forever = {"retention.ms": "-1"}
    return [
        # The log of record: kept forever, so any dispatch can be replayed.
        new_topic(settings, t.events, settings.partitions, forever),
        new_topic(settings, t.send, settings.partitions),
        new_topic(settings, t.webhooks, settings.partitions),
        new_topic(settings, t.applications, 1, {"cleanup.policy": "compact"}),
        new_topic(settings, t.dead_letters, 1, forever),
    ]


async def ensure_topics(settings: KafkaSettings, extra: Sequence[NewTopic] = ()) -> None:
    """Create the project's topics (and ``extra``) if they are missing (idempotent)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **client_options())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [*topic_specs(settings), *extra]
        missing = [spec for spec in wanted if spec.name not in existing]
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
        **client_options(),
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


async def track_topics(producer: AIOKafkaProducer, topics: list[str]) -> None:
    """Make ``producer`` keep metadata for every topic it will write to.

    aiokafka refreshes metadata only for the topics its client tracks, and the
    answer replaces everything it knew. A topic it learnt of in its bootstrap
    metadata (every topic) is not tracked: once some other topic has been
    added (a topic created after the producer started, as faust's changelogs
    are), each refresh forgets it, and a batch for it that was waiting out its
    linger then finds no leader and waits until its delivery timeout.
    """
    for topic in topics:
        producer.client.add_topic(topic)
    await producer.client.force_metadata_update()


async def follow_from_beginning(
    settings: KafkaSettings, topic: str, client_id: str
) -> AIOKafkaConsumer:
    """A started consumer that reads every partition of ``topic`` from offset 0.

    For processes that keep a whole topic in memory (the application registry,
    the message index, the sender's ledger): no consumer group, so each process
    reads everything itself.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        client_id=f"{client_id}-{uuid.uuid4().hex[:6]}",
        **client_options(),
    )
    await consumer.start()
    try:
        # Without a group, subscribe() assigns every partition to this consumer,
        # and auto_offset_reset=earliest starts each one at the beginning.
        consumer.subscribe([topic])
        for attempt in range(600):
            if consumer.assignment():
                return consumer
            if attempt % 20 == 19:
                # A topic created a moment ago can be missing from the first
                # metadata answer, and aiokafka would not ask again before
                # metadata_max_age_ms (5 minutes): ask every second.
                consumer._client.force_metadata_update()
            await asyncio.sleep(0.05)
        raise RuntimeError(f"topic {topic} has no partitions; run ensure_topics first")
    except BaseException:
        await consumer.stop()
        raise


async def reached(consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]) -> bool:
    """Whether ``consumer`` has read up to ``targets`` (end offsets) on every partition."""
    for tp, end in targets.items():
        if await consumer.position(tp) < end:
            return False
    return True
