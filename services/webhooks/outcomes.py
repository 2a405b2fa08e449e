"""The events the deliverer appends to ``dispatch.events`` about a webhook:
each failed attempt (a bounded number of them), and how the round ended."""

from __future__ import annotations

import uuid

from events.base import deterministic_id
from events.dispatch import WebhookAbandoned, WebhookAttemptFailed, WebhookDelivered
from services.webhooks.policy import Verdict
from services.webhooks.state import DeliveryState, at

# Failed attempts recorded one by one at the start of a round; after these,
# only attempts numbered by a power of two are (16, 32, 64...). At the default
# schedule a receiver down for a day costs a webhook 13 such events, not the
# hundred-odd attempts the deliverer makes.
FIRST_ATTEMPTS_RECORDED = 10

WebhookOutcome = WebhookDelivered | WebhookAbandoned | WebhookAttemptFailed


def attempt_recorded(attempt: int) -> bool:
    """Whether the failed attempt numbered ``attempt`` (1-based) gets an event."""
    return attempt <= FIRST_ATTEMPTS_RECORDED or attempt & (attempt - 1) == 0


def outcome_event_id(state: DeliveryState, outcome: str) -> uuid.UUID:
    # Round 0 keeps the plain id; a CLI redelivery is a new fact with its own id.
    if state.round == 0:
        return deterministic_id(state.webhook_id, outcome)
    return deterministic_id(state.webhook_id, outcome, state.round)


def attempt_event_id(webhook_id: uuid.UUID, round_: int, attempt: int) -> uuid.UUID:
    # The same attempt made again (its outcome was not recorded before a
    # restart) gets the same id, so consumers keep one of the two.
    return deterministic_id(webhook_id, "attempt-failed", round_, attempt)


def outcome_event(
    state: DeliveryState, verdict: Verdict, http_status: int | None, attempted_at: float
) -> WebhookOutcome | None:
    """The event for the attempt that brought ``state`` (already counted in
    ``state.attempts``), or None for a failed attempt that is not recorded."""
    command = state.command
    if verdict.kind == "delivered":
        return WebhookDelivered(
            event_id=outcome_event_id(state, "delivered"),
            dispatch_uuid=command.dispatch_uuid,
            webhook_id=state.webhook_id,
            kind=command.kind,
            attempts=state.attempts,
            http_status=http_status or 0,
        )
    if verdict.kind == "abandon":
        return WebhookAbandoned(
            event_id=outcome_event_id(state, "abandoned"),
            dispatch_uuid=command.dispatch_uuid,
            webhook_id=state.webhook_id,
            kind=command.kind,
            attempts=state.attempts,
            reason=verdict.reason,
            http_status=http_status,
        )
    if not attempt_recorded(state.attempts):
        return None
    return WebhookAttemptFailed(
        event_id=attempt_event_id(state.webhook_id, state.round, state.attempts),
        dispatch_uuid=command.dispatch_uuid,
        occurred_at=at(attempted_at),
        webhook_id=state.webhook_id,
        kind=command.kind,
        round=state.round,
        attempt=state.attempts,
        answer=verdict.reason,
        http_status=http_status,
        next_attempt_at=state.next_attempt_at,
    )
