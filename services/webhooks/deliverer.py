"""The webhook deliverer: consumes ``dispatch.webhooks``, POSTs signed webhooks,
retries on a durable schedule, and appends each failed attempt (a bounded
number of them) and the outcome to ``dispatch.events``.

Durability: a command's offset is committed only once a state record of it is
written (acks=all) to the state topic: the outcome of its first attempt, or a
pending record if that attempt takes longer than WEBHOOK_PENDING_RECORD_AFTER_S
(see ``settlement.py``). Every attempt's outcome is written before the next
attempt is scheduled. A restart therefore reloads every pending webhook with
its attempt count and next attempt time as they were, and reads again every
command whose first attempt was not recorded (sending it again: at least once).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from events.codec import UndecodableMessage, decode_webhook
from services.applications.registry import ApplicationRegistry
from services.dead_letters import DeadLetters
from services.kafka import FETCH_MAX_WAIT_MS, KafkaSettings
from services.kafka_security import client_options
from services.producer import RebuildingProducer
from services.webhooks.attempts import Attempts
from services.webhooks.committing import Committing
from services.webhooks.config import WebhookSettings
from services.webhooks.endpoints import Endpoints
from services.webhooks.finished import FinishedWebhooks
from services.webhooks.ordering import OrderGate
from services.webhooks.outcome_writes import OutcomeWrites
from services.webhooks.partitions import Partitions, RebalanceListener
from services.webhooks.safety import DestinationGuard
from services.webhooks.state import DeliveryState, at, encode_state, state_topic
from services.webhooks.transport import Transport

log = logging.getLogger(__name__)

# The longest one poll for commands waits when none come (records end it at
# once). Between polls the loop writes overdue pending records and commits
# settled offsets, so at rest those may come up to this much later; shorter
# polls only woke an idle deliverer for nothing.
IDLE_POLL_MS = 500

Clock = Callable[[], float]


class Deliverer(Attempts, Committing, Partitions):
    def __init__(
        self,
        settings: KafkaSettings,
        config: WebhookSettings,
        *,
        registry: ApplicationRegistry,
        producer: RebuildingProducer,
        transport: Transport,
        guard: DestinationGuard | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._settings = settings
        self._config = config
        self._registry = registry
        self._producer = producer
        self._stopping = asyncio.Event()
        self._transport = transport
        self._guard = guard or DestinationGuard(allow_private=config.allow_private)
        self._clock = clock
        self._state_topic = state_topic(settings)
        self._pending: dict[uuid.UUID, DeliveryState] = {}
        # webhook ids delivered or abandoned, to drop repeated commands
        self._finished = FinishedWebhooks(config.state_retention_s)
        self._pruned_at = 0.0
        self._owned: set[int] = set()
        self._leaving: set[int] = set()  # being revoked (``partitions.py``)
        self._queued: set[uuid.UUID] = set()  # in the heap, an endpoint queue, or in flight
        self._heap: list[tuple[float, int, uuid.UUID]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._gate = OrderGate()
        self._endpoints = Endpoints(config.max_in_flight_per_endpoint)
        self._consumer: AIOKafkaConsumer | None = None
        self._recording: set[asyncio.Task[None]] = set()
        self._took_partitions = asyncio.Event()
        self._generation = 0  # revocations so far (``partitions.py``)
        self._start_settling(config)
        self._outcome_writes = OutcomeWrites(
            lambda records, partitions: producer.send_all(records, partitions=partitions),
            state_topic=self._state_topic,
            owned=lambda partition: partition in self._owned,
            stopping=lambda: self._stopping.is_set(),
        )

    # -- lifecycle ---------------------------------------------------------------
    async def run(self, stop: asyncio.Event, ready: Callable[[], None] | None = None) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            **client_options(),
            group_id=self._config.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=500,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            session_timeout_ms=self._config.session_timeout_ms,
            heartbeat_interval_ms=max(self._config.session_timeout_ms // 4, 100),
        )
        self._consumer = consumer
        self._stopping = stop
        await consumer.start()
        scheduler = asyncio.create_task(self._schedule_loop(), name="webhook-scheduler")
        try:
            consumer.subscribe([self._settings.topics.webhooks], listener=RebalanceListener(self))
            if ready is not None:
                ready()
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=IDLE_POLL_MS)
                generation = self._generation
                if batch and await self._owned_only(batch):
                    await self._take(batch, generation)
                self._record_overdue()
                await self._commit_settled()
                if scheduler.done():
                    scheduler.result()  # surface a crash instead of idling
        finally:
            scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scheduler
            await self._endpoints.cancel()
            # Let outcomes already decided reach Kafka, briefly: each one lost
            # here is a webhook sent again after the restart.
            if self._recording:
                await asyncio.wait(set(self._recording), timeout=5)
            for task in list(self._recording):
                task.cancel()
            with contextlib.suppress(KafkaError, asyncio.CancelledError):
                await self._commit_settled(force=True)
            await consumer.stop()

    # -- commands in ---------------------------------------------------------------
    async def _take(self, batch: dict[TopicPartition, list[Any]], generation: int) -> None:
        """Accept the commands of a batch fetched in assignment ``generation``.

        A rebalance may run at any await (the wait for loading partitions, a
        dead letter being parked): the records of a batch fetched before it
        are then left alone. Their partitions were revoked, their bookkeeping
        dropped and their offsets committed only up to what was taken before;
        whoever owns them now (this process too) reads them again from there.
        Taken anyway, a command would be pending for a partition this process
        no longer owns, never attempted, and its repeat dropped as a duplicate.
        """
        now = self._clock()
        accepted: list[DeliveryState] = []
        for tp, records in batch.items():
            for record in records:
                if self._generation != generation or tp.partition in self._leaving:
                    break
                try:
                    state = self._accept(tp.partition, record.offset, record.value, now)
                except UndecodableMessage as exc:
                    await self._dead_letter(record, str(exc))
                    state = None
                if state is None:
                    # Parked, a duplicate or a tombstone: nothing to record.
                    self._settlement.read(tp.partition, record.offset)
                else:
                    # Committed once its first outcome (or a pending record) is
                    # durable: a crash before that reads the command again.
                    self._settlement.hold(tp.partition, record.offset, state.webhook_id, now)
                    accepted.append(state)
        for state in accepted:
            self._gate.track(state)
        for state in accepted:
            self._schedule(state)

    def _accept(
        self, partition: int, offset: int, value: bytes | None, now: float
    ) -> DeliveryState | None:
        if value is None:
            return None
        command = decode_webhook(value)
        webhook_id = command.event_id
        if webhook_id in self._pending:
            return None  # already on its way; a duplicate or an early redelivery
        finished_round = self._finished.round_of(partition, webhook_id)
        if finished_round is not None and not command.redeliver:
            return None
        self._finished.discard(partition, webhook_id)
        state = DeliveryState(
            command=command,
            source_partition=partition,
            source_offset=offset,
            round=0 if finished_round is None else finished_round + 1,
            next_attempt_at=at(now),
            updated_at=at(now),
        )
        self._pending[webhook_id] = state
        return state

    async def _dead_letter(self, record: Any, reason: str) -> None:
        """Park a command nobody can read, as the processor does with events."""
        await DeadLetters(self._producer, self._settings.topics.dead_letters).park(record, reason)

    async def _record_states(self, states: list[DeliveryState]) -> None:
        if not states:
            return
        await self._producer.send_all(
            [(self._state_topic, str(s.webhook_id).encode(), encode_state(s)) for s in states],
            partitions=[s.source_partition for s in states],
        )

    # -- scheduling -------------------------------------------------------------------
    def _schedule(self, state: DeliveryState) -> None:
        if state.webhook_id in self._queued or not self._gate.admit(state):
            return
        self._queued.add(state.webhook_id)
        heapq.heappush(
            self._heap, (state.next_attempt_at.timestamp(), next(self._seq), state.webhook_id)
        )
        self._wake.set()

    async def _schedule_loop(self) -> None:
        while True:
            now = self._clock()
            if now - self._pruned_at > 60:
                self._pruned_at = now
                self._finished.prune(now)
            while self._heap and self._heap[0][0] <= now:
                _, _, webhook_id = heapq.heappop(self._heap)
                state = self._pending.get(webhook_id)
                if (
                    state is None
                    or state.source_partition not in self._owned
                    or state.source_partition in self._leaving
                ):
                    self._queued.discard(webhook_id)
                    continue
                self._dispatch(state)
            self._wake.clear()
            delay = min(self._heap[0][0] - now, 1.0) if self._heap else 1.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(delay, 0.001))
