"""Partitions of ``dispatch.webhooks`` coming and going: a partition's
commands are taken only once its state records are loaded, and only in the
assignment they were fetched in; a revoked partition gets its attempts under
way recorded and its settled offsets committed before it goes, and no attempt
starts on it meanwhile. Part of :class:`services.webhooks.deliverer.Deliverer`,
which holds the state these methods share.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from services.kafka import KafkaSettings
from services.webhooks.finished import FinishedWebhooks
from services.webhooks.ordering import OrderGate
from services.webhooks.settlement import Settlement
from services.webhooks.state import DeliveryState, latest_states

log = logging.getLogger("services.webhooks.deliverer")


class Partitions:
    # Set by the deliverer (see ``Deliverer.__init__``).
    _settings: KafkaSettings
    _consumer: AIOKafkaConsumer | None
    _pending: dict[uuid.UUID, DeliveryState]
    _finished: FinishedWebhooks
    _gate: OrderGate
    _settlement: Settlement
    _owned: set[int]
    # Partitions being revoked: no attempt starts on them any more, while
    # the ones under way still get their outcomes recorded.
    _leaving: set[int]
    # Counts revocations: a batch fetched before one is not taken after it.
    _generation: int
    _took_partitions: asyncio.Event

    def _schedule(self, state: DeliveryState) -> None:
        raise NotImplementedError

    async def _let_attempts_conclude(self, partitions: list[int]) -> None:
        raise NotImplementedError

    async def _commit_settled(
        self, partitions: list[int] | None = None, force: bool = False
    ) -> None:
        raise NotImplementedError

    async def _owned_only(self, batch: dict[TopicPartition, list[Any]]) -> bool:
        """Put back the records of partitions whose states are still loading
        (aiokafka fetches while ``assigned`` runs); False if none is left."""
        assert self._consumer is not None
        unready = [tp for tp in batch if tp.partition not in self._owned]
        for tp in unready:
            records = batch.pop(tp)
            if records and tp in self._consumer.assignment():
                self._consumer.seek(tp, records[0].offset)
        if unready:
            self._took_partitions.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._took_partitions.wait(), 1.0)
        return bool(batch)

    async def assigned(self, partitions: list[int]) -> None:
        # Until the partitions' states are read, their commands cannot be told
        # from duplicates nor their pending webhooks resumed: keep trying (a
        # broker restart) rather than own partitions whose webhooks never go.
        delay = 0.5
        while True:
            try:
                states = await latest_states(self._settings, partitions)
                break
            except (KafkaError, TimeoutError, OSError) as exc:
                log.warning("could not read webhook states of %s (%r); retrying", partitions, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        pending = sorted(
            (s for s in states.values() if s.phase == "pending"), key=lambda s: s.source_offset
        )
        for state in states.values():
            if state.phase != "pending":
                self._finished.add(
                    state.source_partition,
                    state.webhook_id,
                    state.round,
                    state.updated_at.timestamp(),
                )
        for state in pending:
            self._pending[state.webhook_id] = state
            self._gate.track(state)
        self._owned.update(partitions)
        self._took_partitions.set()
        for state in pending:
            self._schedule(state)
        log.info(
            "took partitions %s: %d pending webhooks, %d finished",
            partitions,
            len(pending),
            len(states) - len(pending),
        )

    async def revoked(self, partitions: list[int]) -> None:
        self._generation += 1
        # From here no attempt starts on these partitions: one started while
        # the revocation waits (a final report its status just released)
        # would conclude after it, unrecorded, and the next owner would send
        # it again.
        self._leaving.update(partitions)
        # What is settled is committed first, so the next owner does not send
        # those webhooks again.
        owned = [p for p in partitions if p in self._owned]
        if owned:
            await self._let_attempts_conclude(owned)
            await self._commit_settled(owned, force=True)
        self._leaving.difference_update(partitions)
        for partition in partitions:
            self._settlement.drop_partition(partition)
            self._owned.discard(partition)
            self._finished.drop_partition(partition)
            self._gate.forget_partition(partition)
        for webhook_id, state in list(self._pending.items()):
            if state.source_partition in partitions:
                del self._pending[webhook_id]


class RebalanceListener(ConsumerRebalanceListener):
    def __init__(self, deliverer: Partitions) -> None:
        self._deliverer = deliverer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._deliverer.revoked(sorted(tp.partition for tp in revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned:
            await self._deliverer.assigned(sorted(tp.partition for tp in assigned))
