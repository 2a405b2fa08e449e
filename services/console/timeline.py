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
    "WebhookAttemptFailed": "webhook-failed",
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
    # One per delivery round (a redelivery starts a new one): its outcome
    # ("delivered", "abandoned", or "retrying" while it goes on), its attempts
    # in all, its answer, and the failed attempts recorded one by one.
    rounds: list[dict[str, Any]]

    @property
    def abandoned(self) -> bool:
        return self.rounds[-1]["outcome"] == "abandoned"


_WEBHOOK_TYPES = ("WebhookAttemptFailed", "WebhookDelivered", "WebhookAbandoned")


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
    """Every webhook of the dispatch with each delivery round: its failed
    attempts as recorded, and how it ended."""
    found: dict[str, Webhook] = {}
    seen: set[str] = set()
    for row in rows:
        if row.type not in _WEBHOOK_TYPES:
            continue
        event = orjson.loads(row.event)
        if event["event_id"] in seen:
            continue  # written twice (a deliverer restarted before it could note it)
        seen.add(event["event_id"])
        webhook = found.setdefault(
            event["webhook_id"],
            Webhook(webhook_id=event["webhook_id"], kind=event["kind"], rounds=[]),
        )
        rounds = webhook.rounds
        if row.type == "WebhookAttemptFailed":
            number = int(event.get("round", 0))
            while len(rounds) <= number:
                rounds.append(_round(len(rounds)))
            current = rounds[number]
            current["failed"].append(
                {
                    "attempt": event["attempt"],
                    "at": row.occurred_at,
                    "answer": event["answer"],
                    "http_status": event.get("http_status"),
                    "next_attempt_at": event["next_attempt_at"],
                }
            )
            current["attempts"] = max(current["attempts"], event["attempt"])
            current["at"] = row.occurred_at
            current["answer"] = event["answer"]
            continue
        # An outcome ends the first round that has none yet.
        ending = next((r for r in rounds if r["outcome"] == "retrying"), None)
        if ending is None:
            ending = _round(len(rounds))
            rounds.append(ending)
        delivered = row.type == "WebhookDelivered"
        ending.update(
            {
                "at": row.occurred_at,
                "outcome": "delivered" if delivered else "abandoned",
                "attempts": event["attempts"],
                "http_status": event.get("http_status"),
                "answer": f"HTTP {event['http_status']}" if delivered else _gave_up(event),
            }
        )
    for webhook in found.values():
        for current in webhook.rounds:
            current["failed"].sort(key=lambda a: a["attempt"])
            current["unrecorded"] = _unrecorded(current)
    return list(found.values())


def _round(number: int) -> dict[str, Any]:
    return {
        "round": number,
        "outcome": "retrying",
        "attempts": 0,
        "at": "",
        "http_status": None,
        "answer": "",
        "failed": [],
        "unrecorded": "",
    }


def _unrecorded(current: dict[str, Any]) -> str:
    """The failed attempts of a round with no line of their own, as ranges
    ("11-15, 17-31"): the deliverer records the first ones and then only
    powers of two, so a long outage stays a few lines."""
    recorded = {a["attempt"] for a in current["failed"]}
    # The last attempt of a finished round is its outcome, not a failed line.
    if current["outcome"] == "retrying":
        last_failed = max(recorded, default=0)
    else:
        last_failed = current["attempts"] - 1
    spans: list[list[int]] = []
    for n in range(1, last_failed + 1):
        if n in recorded:
            continue
        if spans and spans[-1][1] == n - 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _gave_up(event: dict[str, Any]) -> str:
    reason = str(event.get("reason", ""))
    status = event.get("http_status")
    if status and str(status) not in reason:
        return f"{reason} (last answer HTTP {status})"
    return reason
