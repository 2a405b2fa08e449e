"""What the deliverer appends to the log about one webhook: a bounded number
of failed attempts, each with its answer, and the outcome of the round."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from events.codec import decode_event, encode
from events.commands import DeliverWebhook
from events.dispatch import WebhookAttemptFailed, WebhookDelivered
from services.webhooks.config import RetryPolicy
from services.webhooks.outcomes import attempt_recorded, outcome_event
from services.webhooks.policy import AttemptResult, Verdict, decide
from services.webhooks.state import DeliveryState, at

NOW = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def state(attempts: int, round_: int = 0) -> DeliveryState:
    command = DeliverWebhook(
        event_id=uuid.uuid4(),
        dispatch_uuid=uuid.uuid4(),
        application_id="app-1",
        kind="final",
        payload={"status": "completed"},
    )
    return DeliveryState(
        command=command,
        source_partition=0,
        source_offset=0,
        round=round_,
        attempts=attempts,
        next_attempt_at=at(NOW + 10),
        updated_at=at(NOW),
    )


def test_a_failed_attempt_is_an_event_with_its_answer_and_next_time() -> None:
    failed = state(attempts=3, round_=1)
    event = outcome_event(failed, Verdict("retry", "HTTP 503", NOW + 10), 503, NOW)
    assert isinstance(event, WebhookAttemptFailed)
    assert (event.attempt, event.round, event.http_status, event.answer) == (3, 1, 503, "HTTP 503")
    assert event.occurred_at == at(NOW)
    assert event.next_attempt_at == at(NOW + 10)
    assert decode_event(encode(event)) == event
    # The same attempt made again (not recorded before a restart): same id.
    again = outcome_event(failed, Verdict("retry", "HTTP 503", NOW + 20), 503, NOW + 5)
    assert again is not None and again.event_id == event.event_id
    other = outcome_event(state(attempts=3, round_=1), Verdict("retry", "x", NOW), None, NOW)
    assert other is not None and other.event_id != event.event_id


def test_the_outcome_is_still_the_delivered_or_abandoned_event() -> None:
    delivered = outcome_event(state(attempts=4), Verdict("delivered", "HTTP 200"), 200, NOW)
    assert isinstance(delivered, WebhookDelivered) and delivered.attempts == 4


def test_a_day_long_outage_records_a_few_attempts_not_every_one() -> None:
    policy = RetryPolicy()
    first = NOW
    now = NOW
    attempts = 0
    recorded = []
    while True:
        attempts += 1
        verdict = decide(
            policy, AttemptResult(503), attempts=attempts, first_attempt_at=first, now=now
        )
        if verdict.kind != "retry":
            break
        if attempt_recorded(attempts):
            recorded.append(attempts)
        assert verdict.next_attempt_at is not None
        now = verdict.next_attempt_at
    assert attempts > 90  # the deliverer kept trying all day
    assert recorded == [*range(1, 11), 16, 32, 64]
