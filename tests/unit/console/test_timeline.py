"""A dispatch's page reads its life from the history rows: what kind of moment
each event was, and every webhook's delivery rounds with their answers."""

from __future__ import annotations

import uuid
from datetime import timedelta

from events.codec import encode
from events.dispatch import WebhookAbandoned, WebhookAttemptFailed, WebhookDelivered
from projections.store import HistoryRow
from services.console.timeline import timeline, webhooks
from tests.fixtures_events import failover_history


def rows(events: list[object]) -> list[HistoryRow]:
    return [
        HistoryRow(0, n, str(e.dispatch_uuid), e.type, e.occurred_at.isoformat(), encode(e))  # type: ignore[attr-defined]
        for n, e in enumerate(events)
    ]


def test_the_failover_is_marked_and_the_request_kept() -> None:
    events = failover_history(uuid.uuid4())
    entries, request = timeline(rows(events))
    assert [e.kind for e in entries if e.type == "StepStarted"] == ["send", "failover"]
    assert request is not None and request["workflow"][0]["to"]["type"] == "whatsapp"
    assert entries[0].offset == "0@0"


def test_a_redelivered_webhook_has_two_rounds_with_their_answers() -> None:
    dispatch = uuid.uuid4()
    final = next(
        e
        for e in failover_history(dispatch)
        if isinstance(e, WebhookDelivered) and e.kind == "final"
    )
    gave_up = WebhookAbandoned(
        dispatch_uuid=dispatch,
        webhook_id=final.webhook_id,
        kind="final",
        attempts=6,
        reason="gave up after 24 h",
        http_status=503,
        occurred_at=final.occurred_at,
    )
    [hook] = webhooks(rows([gave_up, final]))
    assert [r["outcome"] for r in hook.rounds] == ["abandoned", "delivered"]
    assert hook.rounds[0]["answer"] == "gave up after 24 h (last answer HTTP 503)"
    assert hook.rounds[1]["answer"] == f"HTTP {final.http_status}"
    assert not hook.abandoned  # the last round was delivered


def attempt_failed(final: WebhookDelivered, attempt: int, round_: int = 0) -> WebhookAttemptFailed:
    moment = final.occurred_at + timedelta(seconds=attempt)
    return WebhookAttemptFailed(
        dispatch_uuid=final.dispatch_uuid,
        webhook_id=final.webhook_id,
        kind="final",
        round=round_,
        attempt=attempt,
        answer="HTTP 503" if attempt % 2 else "connection refused",
        http_status=503 if attempt % 2 else None,
        next_attempt_at=moment + timedelta(seconds=5),
        occurred_at=moment,
    )


def test_every_recorded_attempt_is_shown_with_its_answer_and_the_gaps_are_said() -> None:
    dispatch = uuid.uuid4()
    final = next(
        e
        for e in failover_history(dispatch)
        if isinstance(e, WebhookDelivered) and e.kind == "final"
    )
    failed = [attempt_failed(final, n) for n in [*range(1, 11), 16]]
    delivered = final.model_copy(update={"attempts": 20})
    # The first attempt's event written twice: shown once.
    [hook] = webhooks(rows([*failed[:1], *failed, delivered]))
    [only] = hook.rounds
    assert [a["attempt"] for a in only["failed"]] == [*range(1, 11), 16]
    assert only["failed"][0]["answer"] == "HTTP 503"
    assert only["failed"][1]["answer"] == "connection refused"
    assert only["unrecorded"] == "11-15, 17-19"
    assert (only["outcome"], only["attempts"]) == ("delivered", 20)
    entries, _ = timeline(rows(failed[:2]))
    assert entries[0].kind == "webhook-failed"
    assert "final webhook attempt 1 failed: HTTP 503" in entries[0].what


def test_a_round_still_retrying_shows_its_attempts_so_far() -> None:
    dispatch = uuid.uuid4()
    final = next(
        e
        for e in failover_history(dispatch)
        if isinstance(e, WebhookDelivered) and e.kind == "final"
    )
    gave_up = WebhookAbandoned(
        dispatch_uuid=dispatch,
        webhook_id=final.webhook_id,
        kind="final",
        attempts=1,
        reason="not retryable: HTTP 410",
        http_status=410,
    )
    redelivery = [attempt_failed(final, 1, round_=1), attempt_failed(final, 2, round_=1)]
    [hook] = webhooks(rows([gave_up, *redelivery]))
    assert [r["outcome"] for r in hook.rounds] == ["abandoned", "retrying"]
    assert [a["attempt"] for a in hook.rounds[1]["failed"]] == [1, 2]
    assert hook.rounds[1]["unrecorded"] == ""
    assert not hook.abandoned  # a redelivery is under way
