"""One webhook attempt and what follows it: the POST (signed, through the
destination guard and the endpoint's slot), the verdict, and the outcome
recorded on ``dispatch.events`` and the state topic before the next attempt is
scheduled. Part of :class:`services.webhooks.deliverer.Deliverer`, which holds
the state these methods share.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

from events.applications import ApplicationRegistered
from events.codec import encode, to_json
from services.applications.registry import ApplicationRegistry
from services.kafka import KafkaSettings
from services.producer import RebuildingProducer, Record
from services.webhooks import signing
from services.webhooks.config import WebhookSettings
from services.webhooks.endpoints import Endpoints
from services.webhooks.finished import FinishedWebhooks
from services.webhooks.ordering import OrderGate
from services.webhooks.outcome_writes import OutcomeWrites
from services.webhooks.outcomes import WebhookOutcome, outcome_event
from services.webhooks.policy import AttemptResult, Verdict, decide
from services.webhooks.safety import DestinationGuard, UnsafeDestination, check_url, endpoint_of
from services.webhooks.settlement import Settlement
from services.webhooks.state import DeliveryState, at
from services.webhooks.transport import Transport

log = logging.getLogger("services.webhooks.deliverer")


class Attempts:
    # Set by the deliverer (see ``Deliverer.__init__``).
    _settings: KafkaSettings
    _config: WebhookSettings
    _registry: ApplicationRegistry
    _producer: RebuildingProducer
    _transport: Transport
    _guard: DestinationGuard
    _clock: Callable[[], float]
    _stopping: asyncio.Event
    _pending: dict[uuid.UUID, DeliveryState]
    _finished: FinishedWebhooks
    _owned: set[int]
    _queued: set[uuid.UUID]
    _gate: OrderGate
    _endpoints: Endpoints
    _recording: set[asyncio.Task[None]]
    _settlement: Settlement
    _early_records: dict[uuid.UUID, asyncio.Task[None]]
    _attempting: dict[uuid.UUID, int]  # webhook id -> partition, attempt under way
    _attempt_done: asyncio.Event

    def _schedule(self, state: DeliveryState) -> None:
        raise NotImplementedError

    _outcome_writes: OutcomeWrites

    def _dispatch(self, state: DeliveryState) -> None:
        self._attempting[state.webhook_id] = state.source_partition
        app = self._registry.get(state.command.application_id)
        if app is None:
            # The registry may lag behind the processor by a moment: retry on
            # the normal schedule rather than drop the webhook.
            missing = f"application {state.command.application_id!r} is not registered"
            result = AttemptResult(None, error=missing)
            self._run_now(lambda: self._conclude(state, result, self._clock()))
            return
        url = app.status_url if state.command.kind == "status" else app.final_report_url
        try:
            check_url(url)
        except UnsafeDestination as exc:
            refusal = str(exc)
            self._run_now(lambda: self._conclude(state, None, self._clock(), refusal=refusal))
            return
        self._endpoints.submit(endpoint_of(url), lambda: self._attempt(state, app, url))

    def _run_now(self, job: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        """Record an outcome in the background: the endpoint's slot is for the
        HTTP request only, not for the Kafka writes that follow it."""
        task = asyncio.create_task(job())
        self._recording.add(task)
        task.add_done_callback(self._recorded)
        return task

    def _recorded(self, task: asyncio.Task[None]) -> None:
        self._recording.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording a webhook outcome crashed", exc_info=task.exception())

    # -- one attempt --------------------------------------------------------------------
    async def _attempt(self, state: DeliveryState, app: ApplicationRegistered, url: str) -> None:
        started = self._clock()
        try:
            await self._guard.check(url)
        except UnsafeDestination as exc:
            refusal = str(exc)
            self._run_now(lambda: self._conclude(state, None, started, refusal=refusal))
            return
        except ConnectionError as exc:
            failure = AttemptResult(None, error=str(exc))
            self._run_now(lambda: self._conclude(state, failure, started))
            return
        body = to_json(state.command.payload)
        headers = signing.headers(
            body,
            secret=app.signature_secret,
            application_id=app.application_id,
            webhook_id=state.webhook_id,
            attempt=state.attempts + 1,
            now=started,
        )
        result = await self._transport.post(url, body, headers, now=started)
        self._run_now(lambda: self._conclude(state, result, started))

    async def _conclude(
        self,
        state: DeliveryState,
        result: AttemptResult | None,
        started: float,
        *,
        refusal: str | None = None,
    ) -> None:
        attempts = state.attempts + 1
        first = state.first_attempt_at.timestamp() if state.first_attempt_at else started
        now = self._clock()
        if refusal is not None or result is None:
            verdict = Verdict("abandon", f"refused: {refusal}")
        else:
            verdict = decide(
                self._config.retry, result, attempts=attempts, first_attempt_at=first, now=now
            )
        http_status = result.http_status if result is not None else None
        phase = {"delivered": "delivered", "abandon": "abandoned", "retry": "pending"}[verdict.kind]
        updated = state.model_copy(
            update={
                "phase": phase,
                "attempts": attempts,
                "first_attempt_at": at(first),
                "next_attempt_at": at(verdict.next_attempt_at or now),
                "last_result": verdict.reason,
                "updated_at": at(now),
            }
        )
        partition, offset = state.source_partition, state.source_offset
        # The status was attempted: final reports held back for it may go now,
        # not once its outcome is recorded as well.
        self._release_finals_after(state)
        # Not to be overtaken by a pending record of the command (its first
        # attempt outlasting the grace): the outcome must be the later record.
        self._settlement.busy(partition, offset)
        early = self._early_records.get(state.webhook_id)
        if early is not None:
            await asyncio.wait({early})
        try:
            # The attempt happened: what is left is to record it. Kafka away
            # (a broker restart) is waited out in outcome_writes.py, not by sending
            # the webhook again: that would post it to the receiver once per
            # failed write for as long as the outage lasts.
            event = outcome_event(updated, verdict, http_status, started)
            recorded = await self._outcome_writes.record(
                None if event is None else self._event_record(event),
                updated if partition in self._owned else None,
            )
        except Exception:
            log.exception("could not record the outcome of webhook %s", state.webhook_id)
            recorded = False
        if recorded:
            self._settlement.settle(partition, offset)
        else:
            self._settlement.busy(partition, offset, False)
            # Stopping, or a bug: the attempt is made again later (at least
            # once; receivers dedupe on the webhook id).
            updated = state.model_copy(
                update={"next_attempt_at": at(self._clock() + self._config.retry.initial_s)}
            )
            verdict = Verdict("retry", "outcome not recorded")
        self._queued.discard(state.webhook_id)
        owned = state.source_partition in self._owned
        if verdict.kind == "retry":
            if owned:
                self._pending[state.webhook_id] = updated
                self._schedule(updated)
        else:
            self._pending.pop(state.webhook_id, None)
            if owned:
                self._finished.add(state.source_partition, state.webhook_id, state.round, now)
        self._attempting.pop(state.webhook_id, None)
        self._attempt_done.set()
        log.info(
            "webhook %s (%s, attempt %d): %s",
            state.webhook_id,
            state.command.kind,
            attempts,
            verdict.kind if verdict.kind != "retry" else f"retry at {updated.next_attempt_at}",
        )

    def _release_finals_after(self, state: DeliveryState) -> None:
        """The status webhook ``state`` was attempted: final reports held back
        for it may go (once: the gate forgets what it released)."""
        for final in self._gate.attempted(state):
            if final.webhook_id in self._pending:
                self._schedule(self._pending[final.webhook_id])

    def _event_record(self, event: WebhookOutcome) -> Record:
        return (self._settings.topics.events, str(event.dispatch_uuid).encode(), encode(event))
