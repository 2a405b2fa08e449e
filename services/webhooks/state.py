"""Per-webhook delivery state, kept in a compacted topic the deliverer owns.

``<prefix>dispatch.webhook-state`` has as many partitions as
``dispatch.webhooks`` and each record is written to the partition its command
came from, so whoever owns a command partition finds that partition's pending
retries in the state partition of the same number. Keyed by webhook id, the
latest record wins: after a restart the deliverer reloads every webhook that is
still pending, with its attempt count and next attempt time unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import AwareDatetime, BaseModel, ConfigDict

from events.codec import from_json, to_json
from events.commands import DeliverWebhook
from services.kafka import FETCH_MAX_WAIT_MS, KafkaSettings, new_topic
from services.kafka_security import client_options

log = logging.getLogger(__name__)

Phase = Literal["pending", "delivered", "abandoned"]


def state_topic(settings: KafkaSettings) -> str:
    return settings.topics.webhooks.removesuffix("dispatch.webhooks") + "dispatch.webhook-state"


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class DeliveryState(BaseModel):
    """Where one webhook stands. ``round`` counts CLI redeliveries (0 = original)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: DeliverWebhook
    source_partition: int
    source_offset: int
    phase: Phase = "pending"
    round: int = 0
    attempts: int = 0
    first_attempt_at: AwareDatetime | None = None
    next_attempt_at: AwareDatetime
    last_result: str | None = None
    updated_at: AwareDatetime

    @property
    def webhook_id(self) -> uuid.UUID:
        return self.command.event_id

    def encode(self) -> bytes:
        return encode_state(self)


def encode_state(state: DeliveryState) -> bytes:
    return to_json(state.model_dump(mode="python"))


def decode_state(data: bytes) -> DeliveryState:
    return DeliveryState.model_validate(from_json(data))


async def partition_count(settings: KafkaSettings, topic: str) -> int:
    """Partitions of ``topic``; 0 if it does not exist."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **client_options())
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return 0 if described.get("error_code") else len(described.get("partitions", []))
    finally:
        await admin.close()


async def ensure_state_topic(
    settings: KafkaSettings, partitions: int, retention_s: float = 7 * 86_400.0
) -> None:
    """Create the state topic if missing: compacted (the latest record per
    webhook) and time-limited, so finished webhooks do not pile up forever. A
    pending webhook's record is rewritten at every attempt, at most
    ``WEBHOOK_RETRY_MAX_S`` apart, so it never ages out while pending."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **client_options())
    await admin.start()
    try:
        name = state_topic(settings)
        if name not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(
                    [
                        new_topic(
                            settings,
                            name,
                            partitions,
                            {
                                "cleanup.policy": "compact,delete",
                                "retention.ms": str(int(retention_s * 1000)),
                            },
                        )
                    ]
                )
    finally:
        await admin.close()


async def read_states(
    settings: KafkaSettings, partitions: list[int] | None = None
) -> AsyncIterator[DeliveryState]:
    """Every state record of the given partitions (all if None), oldest first,
    up to the end offsets seen when called. Later records supersede earlier ones."""
    topic = state_topic(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        **client_options(),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    try:
        await consumer.start()
        if partitions is None:
            partitions = list(range(await partition_count(settings, topic)))
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.value is None:
                        continue
                    try:
                        yield decode_state(record.value)
                    except ValueError as exc:
                        # Not a state this code wrote: skipped, never fatal
                        # (a partition whose states cannot be read would
                        # never deliver its pending webhooks).
                        log.warning(
                            "skipping unreadable webhook state at %s@%s: %s",
                            record.partition,
                            record.offset,
                            str(exc)[:200],
                        )
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


async def latest_states(
    settings: KafkaSettings, partitions: list[int] | None = None
) -> dict[uuid.UUID, DeliveryState]:
    latest: dict[uuid.UUID, DeliveryState] = {}
    async for state in read_states(settings, partitions):
        latest[state.webhook_id] = state
    return latest
