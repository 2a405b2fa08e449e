"""Around a rebalance: a batch fetched before it is not taken after it, and no
attempt starts on a partition while it is being revoked.

The deliverer awaits between fetching a batch and taking its commands (for a
partition whose states are still loading, or while a dead letter is parked),
and the rebalance callbacks run in those awaits. A command taken after its
partition was revoked was pending for a partition the deliverer no longer
owned: never attempted, and when the partition came back, its repeat was
dropped as a duplicate and its offset committed. The final report was lost.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from events.codec import encode
from events.commands import DeliverWebhook
from services.kafka import KafkaSettings
from services.webhooks.config import WebhookSettings
from services.webhooks.deliverer import Deliverer

SETTINGS = KafkaSettings(bootstrap_servers="127.0.0.1:1", partitions=2)
TOPIC = SETTINGS.topics.webhooks


@dataclass
class Record:
    offset: int
    value: bytes


class Consumer:
    """What the deliverer asks of its consumer around a batch."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned
        self.seeks: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp] = offset

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)


def _deliverer(owned: set[int], consumer: Consumer) -> Deliverer:
    deliverer = Deliverer(
        SETTINGS,
        WebhookSettings(),
        registry=None,  # type: ignore[arg-type]  # no attempt is made here
        producer=None,  # type: ignore[arg-type]
        transport=None,  # type: ignore[arg-type]
    )
    deliverer._owned = set(owned)
    deliverer._consumer = consumer  # type: ignore[assignment]
    return deliverer


def _final_report(offset: int) -> Record:
    command = DeliverWebhook(
        dispatch_uuid=uuid.uuid4(), application_id="shop", kind="final", payload={}
    )
    return Record(offset, encode(command))


async def test_a_batch_fetched_before_a_revocation_is_left_for_the_next_owner() -> None:
    owned, loading = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    consumer = Consumer({owned, loading})
    deliverer = _deliverer({0}, consumer)
    batch: dict[TopicPartition, list[Any]] = {
        owned: [_final_report(7)],
        loading: [_final_report(3)],
    }
    generation = deliverer._generation

    # Partition 1's states are loading: the deliverer waits for them, and a
    # rebalance takes both partitions away meanwhile.
    waiting = asyncio.create_task(deliverer._owned_only(batch))
    await asyncio.sleep(0)
    await deliverer.revoked([0, 1])
    consumer.assigned = set()
    deliverer._took_partitions.set()
    assert await waiting  # partition 0 was owned when the batch came

    await deliverer._take(batch, generation)

    assert deliverer._pending == {}, "a command pending for a partition no longer owned"
    assert deliverer._settlement.committable() == {}, "an offset the next owner relies on"
    assert consumer.seeks == {loading: 3}  # the loading partition's records put back


async def test_a_batch_of_the_current_assignment_is_taken() -> None:
    owned = TopicPartition(TOPIC, 0)
    consumer = Consumer({owned})
    deliverer = _deliverer({0}, consumer)
    batch: dict[TopicPartition, list[Any]] = {owned: [_final_report(7)]}

    assert await deliverer._owned_only(batch)
    await deliverer._take(batch, deliverer._generation)

    assert len(deliverer._pending) == 1
    # Held until its first outcome is recorded: committed up to it, not past.
    assert deliverer._settlement.committable() == {0: 7}
    assert deliverer._settlement.unsettled_count() == 1


async def test_no_attempt_starts_on_a_partition_while_it_is_being_revoked() -> None:
    # A final report its status just released is due while the revocation
    # commits: started then, it would conclude after the partition went,
    # unrecorded, and the next owner would send it again.
    tp = TopicPartition(TOPIC, 0)
    consumer = Consumer({tp})
    committing = asyncio.Event()
    committed = asyncio.Event()

    async def slow_commit(offsets: dict[TopicPartition, int]) -> None:
        committing.set()
        await committed.wait()

    consumer.commit = slow_commit  # type: ignore[method-assign]
    deliverer = _deliverer({0}, consumer)
    now = [1000.0]
    deliverer._clock = lambda: now[0]
    started: list[uuid.UUID] = []
    deliverer._dispatch = lambda state: started.append(state.webhook_id)  # type: ignore[method-assign]
    batch: dict[TopicPartition, list[Any]] = {tp: [_final_report(7)]}
    await deliverer._take(batch, deliverer._generation)
    deliverer._settlement.read(0, 8)  # something to commit
    now[0] = 999.0  # not due yet

    scheduler = asyncio.create_task(deliverer._schedule_loop())
    try:
        revoking = asyncio.create_task(deliverer.revoked([0]))
        await asyncio.wait_for(committing.wait(), 1)
        now[0] = 1001.0  # due now, while the revocation commits
        deliverer._wake.set()
        await asyncio.sleep(0.05)  # the scheduler's turn
        committed.set()
        await revoking
    finally:
        scheduler.cancel()
    assert started == []
