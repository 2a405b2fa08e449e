"""Kafka plumbing shared by every process: topic creation, producers (the
settings are :class:`services.settings.KafkaSettings`, re-exported here).

aiokafka internals touched (pinned by ``tests/unit/processor/test_runtime_contract.py``):
``AIOKafkaConsumer._client`` (to ask again for a topic's metadata); besides,
the client's ``add_topic`` and ``force_metadata_update``. Every consumer's
fetch waits are adjusted by ``services/fetch_wait.py`` (its own list)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services import fetch_wait
from services.kafka_security import client_options
from services.settings import KafkaSettings

# The longest a fetch waits at the broker for data (aiokafka's default: 500 ms).
# A consumer keeps one fetch in flight per broker, and the fetch sent while
# some partitions' records are still being handled holds only the others: when
# those are empty, the broker keeps it the whole wait and nothing new arrives
# meanwhile, on any partition. The wait bounds that stall; a fetch that finds
# data returns at once. An idle consumer asks 1 / 50 ms = 20 times a second.
FETCH_MAX_WAIT_MS = 50
# ... while busy: a fetch that leaves no partition out waits longer (idle
# consumers ask twice a second, not twenty times), see ``fetch_wait``.
fetch_wait.install()

__all__ = ["KafkaSettings"]  # where every process has always imported it from


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
    settings: KafkaSettings,
    topic: str,
    client_id: str,
    *,
    fetch_min_bytes: int = 1,
    fetch_max_wait_ms: int = FETCH_MAX_WAIT_MS,
) -> AIOKafkaConsumer:
    """A started consumer that reads every partition of ``topic`` from offset 0.

    For processes that keep a whole topic in memory (the application registry,
    the message index, the sender's ledger): no consumer group, so each process
    reads everything itself. A follower that need not see each record at once
    asks the broker to gather (``fetch_min_bytes`` or ``fetch_max_wait_ms``,
    whichever comes first).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_min_bytes=fetch_min_bytes,
        fetch_max_wait_ms=fetch_max_wait_ms,
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
