"""A dispatch's page reads its life from the history rows: what kind of moment
each event was, and every webhook's delivery rounds with their answers."""

from __future__ import annotations

import uuid

from events.codec import encode
from events.dispatch import WebhookAbandoned, WebhookDelivered
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
