"""One dispatch's life as the console shows it: its events in log order, each
with a line a person can read and a kind that says what sort of moment it was."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from projections.audit import Narration
from projections.store import HistoryRow

KINDS = {
    "WorkflowRequested": "request",
    "StepStarted": "send",
    "MessageSubmitted": "send",
    "MessageSendFailed": "failure",
    "MessageStatusReceived": "status",
    "TimerScheduled": "deadline",
    "StepTimedOut": "failure",
    "WorkflowCompleted": "end",
    "WorkflowFailed": "end",
    "UsageAmended": "status",
    "WebhookDelivered": "webhook",
    "WebhookAbandoned": "webhook-failed",
}


@dataclass(frozen=True)
class Entry:
    at: str
    type: str
    kind: str
    what: str
    step: int | None
    offset: str  # partition@offset: where it is on the log


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    kind: str
    rounds: list[dict[str, Any]]  # one per delivery round: outcome, attempts, answer

    @property
    def abandoned(self) -> bool:
        return self.rounds[-1]["outcome"] == "abandoned"


def timeline(rows: list[HistoryRow]) -> tuple[list[Entry], dict[str, Any] | None]:
    """The entries, and the request as the client sent it (its workflow)."""
    entries: list[Entry] = []
    request: dict[str, Any] | None = None
    narration = Narration()
    for row in rows:
        event = orjson.loads(row.event)
        if row.type == "WorkflowRequested":
            request = {"template": event.get("template"), "workflow": event.get("workflow")}
        kind = KINDS.get(row.type, "other")
        step = event.get("step")
        if row.type == "StepStarted" and isinstance(step, int) and step > 0:
            kind = "failover"
        entries.append(
            Entry(
                at=row.occurred_at,
                type=row.type,
                kind=kind,
                what=narration.describe(event),
                step=step if isinstance(step, int) else None,
                offset=f"{row.partition}@{row.offset}",
            )
        )
    return entries, request


def webhooks(rows: list[HistoryRow]) -> list[Webhook]:
    """Every webhook of the dispatch with each delivery round's outcome (a
    redelivery is a new round with its own attempts)."""
    found: dict[str, Webhook] = {}
    for row in rows:
        if row.type not in ("WebhookDelivered", "WebhookAbandoned"):
            continue
        event = orjson.loads(row.event)
        webhook = found.setdefault(
            event["webhook_id"],
            Webhook(webhook_id=event["webhook_id"], kind=event["kind"], rounds=[]),
        )
        delivered = row.type == "WebhookDelivered"
        webhook.rounds.append(
            {
                "at": row.occurred_at,
                "outcome": "delivered" if delivered else "abandoned",
                "attempts": event["attempts"],
                "http_status": event.get("http_status"),
                "answer": f"HTTP {event['http_status']}" if delivered else _gave_up(event),
            }
        )
    return list(found.values())


def _gave_up(event: dict[str, Any]) -> str:
    reason = str(event.get("reason", ""))
    status = event.get("http_status")
    if status and str(status) not in reason:
        return f"{reason} (last answer HTTP {status})"
    return reason
