"""Committing the offsets of settled commands (see ``settlement.py``): the
pending records written for commands whose first attempt outlasts the grace,
and the batched offset commits. Part of
:class:`services.webhooks.deliverer.Deliverer`, which holds the state these
methods share.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from services.kafka import KafkaSettings
from services.producer import until_written
from services.webhooks.config import WebhookSettings
from services.webhooks.settlement import Settlement
from services.webhooks.state import DeliveryState

log = logging.getLogger("services.webhooks.deliverer")

# Settled offsets are committed in batches, at most this often (and on
# revocation and shutdown).
COMMIT_EVERY_S = 0.2


class Committing:
    # Set by the deliverer (see ``Deliverer.__init__``).
    _settings: KafkaSettings
    _clock: Callable[[], float]
    _stopping: asyncio.Event
    _pending: dict[uuid.UUID, DeliveryState]
    _owned: set[int]
    _consumer: AIOKafkaConsumer | None
    _settlement: Settlement
    _early_records: dict[uuid.UUID, asyncio.Task[None]]
    _committed_at: float
    _config: WebhookSettings
    _attempting: dict[uuid.UUID, int]
    _attempt_done: asyncio.Event

    def _start_settling(self, config: WebhookSettings) -> None:
        self._settlement = Settlement(config.pending_record_after_s)
        # webhook id -> the task writing its pending record after the grace
        self._early_records = {}
        self._committed_at = 0.0
        self._attempting = {}  # webhook id -> partition, for attempts under way
        self._attempt_done = asyncio.Event()

    def _run_now(self, job: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        raise NotImplementedError

    async def _record_states(self, states: list[DeliveryState]) -> None:
        raise NotImplementedError

    def _record_overdue(self) -> None:
        """Write a pending record for each command whose first attempt has not
        concluded within the grace, so its offset can be committed."""
        due: list[tuple[DeliveryState, int]] = []
        for _partition, offset, webhook_id in self._settlement.overdue(self._clock()):
            state = self._pending.get(webhook_id)
            if state is None:
                # Never expected (an unsettled command is pending): left
                # unsettled, so it is read again after a restart.
                log.warning("no pending state for unsettled webhook %s", webhook_id)
                continue
            due.append((state, offset))
        if due:
            task = self._run_now(functools.partial(self._write_pending, due))
            for state, _offset in due:
                self._early_records[state.webhook_id] = task

    async def _write_pending(self, due: list[tuple[DeliveryState, int]]) -> None:
        async def write() -> None:
            # A partition that moved away is its new owner's to record.
            owned = [state for state, _offset in due if state.source_partition in self._owned]
            if owned:
                await self._record_states(owned)

        try:
            what = f"the pending states of {len(due)} webhook(s)"
            written = await until_written(write, what=what, stop=self._stopping)
        finally:
            for state, _offset in due:
                self._early_records.pop(state.webhook_id, None)
        for state, offset in due:
            if written:
                self._settlement.settle(state.source_partition, offset)
            else:
                self._settlement.busy(state.source_partition, offset, False)

    async def _let_attempts_conclude(self, partitions: list[int]) -> None:
        """Before partitions go: attempts already under way on them get up to
        the grace to have their outcomes recorded, so the next owner (often
        this very process) does not send them again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.pending_record_after_s
        while any(p in partitions for p in self._attempting.values()):
            left = deadline - loop.time()
            if left <= 0:
                return
            self._attempt_done.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._attempt_done.wait(), left)

    async def _commit_settled(
        self, partitions: list[int] | None = None, force: bool = False
    ) -> None:
        now = time.monotonic()
        if not force and now - self._committed_at < COMMIT_EVERY_S:
            return
        offsets = self._settlement.committable(partitions)
        if not offsets or self._consumer is None:
            return
        self._committed_at = now
        topic = self._settings.topics.webhooks
        try:
            await self._consumer.commit({TopicPartition(topic, p): o for p, o in offsets.items()})
        except KafkaError as exc:
            # A rebalance took a partition away: its new owner reads its
            # unsettled commands again and drops those it finds finished.
            log.warning("offset commit failed (%s); commands will be re-read and deduped", exc)
            return
        self._settlement.committed(offsets)
