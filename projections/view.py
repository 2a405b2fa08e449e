"""The workflow read model: a pure fold of one dispatch's events into a view.

The view is plain JSON-ready data (what ``GET /v0.1/dispatch/{uuid}`` shows).
Applying an event twice leaves the view as it was, so a replay, or a
redelivered event, cannot double-count a status or a price.
"""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from events.codec import LogEvent
from events.dispatch import (
    MessageOutcomeUnknown,
    MessageSendFailed,
    MessageStatusReceived,
    MessageSubmitted,
    StepStarted,
    StepTimedOut,
    Tick,
    TimerScheduled,
    UsageAmended,
    WebhookAbandoned,
    WebhookDelivered,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRequested,
)
from services.processor.decide import (
    final_webhook_id,
    send_failure_webhook_id,
    status_webhook_id,
)
from services.processor.fold import status_key

View = dict[str, Any]

IN_FLIGHT = ("started", "submitted")
# Distinct statuses kept per message, as the processor keeps them.
MAX_STATUSES_PER_MESSAGE = int(os.environ.get("DISPATCH_MAX_STATUSES_PER_MESSAGE", "16"))
CONDITION_MET = {"delivered": {"delivered", "read"}, "read": {"read"}}


def new_view(event: WorkflowRequested) -> View:
    steps: list[dict[str, Any]] = []
    for index, item in enumerate(event.workflow):
        failover = item.get("failover") or {}
        steps.append(
            {
                "step": index,
                "channel": (item.get("to") or {}).get("type"),
                "to": item.get("to"),
                "condition_status": failover.get("condition_status"),
                "expiry_time": failover.get("expiry_time"),
                "state": "pending",
                "message_uuid": None,
                "started_at": None,
                "submitted_at": None,
                "deadline_at": None,
                "error": None,
                "outcome_unknown": False,
                "usage": None,
                "statuses": [],
            }
        )
    return {
        "dispatch_uuid": str(event.dispatch_uuid),
        "application_id": event.application_id,
        "template": event.template,
        "status": "in_progress",
        "current_step": None,
        "requested_at": _iso(event.occurred_at),
        "finished_at": None,
        "steps": steps,
        "usage": {"price": "0", "currency": "EUR"},
        "final_report": {"status": None, "delivered": False, "abandoned": False},
        "webhooks": {"delivered": [], "abandoned": [], "pending": []},
    }


def apply(view: View | None, event: LogEvent) -> View | None:
    """Fold one event into the view (``None`` until WorkflowRequested is seen)."""
    if isinstance(event, Tick):
        return view
    if isinstance(event, WorkflowRequested):
        return view if view is not None else new_view(event)
    if view is None:
        return None  # events of a dispatch whose request we never saw
    step = _step(view, getattr(event, "step", None))
    match event:
        case StepStarted():
            if step is not None and step["state"] == "pending":
                step["state"] = "started"
                step["started_at"] = _iso(event.occurred_at)
                view["current_step"] = event.step
                if event.deadline_at is not None and step["deadline_at"] is None:
                    step["deadline_at"] = _iso(event.deadline_at)
        case MessageSubmitted():
            if step is not None and step["message_uuid"] is None:
                step["message_uuid"] = event.message_uuid
                _submitted(view, step, event.occurred_at)
        case MessageOutcomeUnknown():
            # Waits as if submitted at the attempt; a status naming the step
            # (by client_ref) brings its message_uuid.
            if step is not None and step["submitted_at"] is None and step["error"] is None:
                step["outcome_unknown"] = True
                _submitted(view, step, event.attempted_at)
        case MessageSendFailed():
            if step is not None and step["error"] is None:
                _issued(view, send_failure_webhook_id(view["dispatch_uuid"], event.step))
                step["error"] = event.error.model_dump()
                step["state"] = "failed"
                # The provider gave no message_uuid; the command id (the
                # client_ref) stands in for it, as in the webhooks.
                if step["message_uuid"] is None:
                    step["message_uuid"] = str(event.command_id)
        case TimerScheduled():
            if step is not None:
                step["deadline_at"] = _iso(event.deadline_at)
        case StepTimedOut():
            if step is not None and step["state"] in ("started", "submitted"):
                step["state"] = "timed_out"
        case MessageStatusReceived():
            _apply_status(view, event)
        case WorkflowCompleted() | WorkflowFailed():
            if view["status"] == "in_progress":
                _issued(view, final_webhook_id(view["dispatch_uuid"]))
                view["status"] = "completed" if isinstance(event, WorkflowCompleted) else "error"
                view["final_report"]["status"] = view["status"]
                view["finished_at"] = _iso(event.occurred_at)
        case UsageAmended():
            pass  # the total is recomputed from the prices themselves
        case WebhookDelivered():
            _note_webhook(view, "delivered", str(event.webhook_id))
            if event.kind == "final":
                view["final_report"]["delivered"] = True
        case WebhookAbandoned():
            _note_webhook(view, "abandoned", str(event.webhook_id))
            if event.kind == "final":
                view["final_report"]["abandoned"] = True
    return view


def _submitted(view: View, step: dict[str, Any], at: Any) -> None:
    if step["submitted_at"] is not None:
        return
    step["submitted_at"] = _iso(at)
    if step["state"] in ("pending", "started"):
        step["state"] = "submitted"
        if step["step"] < len(view["steps"]) - 1 and step["expiry_time"] is not None:
            # A non-last step's deadline counts from its submission (the
            # processor's fold arms it the same way).
            step["deadline_at"] = _iso(at + timedelta(seconds=int(step["expiry_time"])))


def _apply_status(view: View, event: MessageStatusReceived) -> None:
    step = _step(view, event.step)
    if step is None:
        step = next((s for s in view["steps"] if s["message_uuid"] == event.message_uuid), None)
    if step is None:
        return
    entry: dict[str, Any] = {"status": event.status, "timestamp": _iso(event.timestamp)}
    if event.error is not None:
        entry["error"] = event.error.model_dump()
    if event.usage is not None:
        entry["usage"] = event.usage.model_dump()
    if entry in step["statuses"]:
        return
    if len(step["statuses"]) >= MAX_STATUSES_PER_MESSAGE:
        return  # the processor drops it too (Policy.max_statuses_per_message)
    step["statuses"].append(entry)
    _issued(view, status_webhook_id(view["dispatch_uuid"], status_key(event)))
    if step["message_uuid"] is None:
        step["message_uuid"] = event.message_uuid
    if event.usage is not None:
        step["usage"] = event.usage.model_dump()
        view["usage"] = _total_usage(view)
    condition = step["condition_status"] or "delivered"
    met = event.status in CONDITION_MET[condition] and step["state"] != "timed_out"
    failed = event.status in ("rejected", "undeliverable") and step["state"] in IN_FLIGHT
    if met or failed:
        step["state"] = event.status


def _total_usage(view: View) -> dict[str, str]:
    prices = [Decimal(s["usage"]["price"]) for s in view["steps"] if s["usage"] is not None]
    currency = next((s["usage"]["currency"] for s in view["steps"] if s["usage"]), "EUR")
    return {"price": _decimal_str(sum(prices, Decimal(0))), "currency": currency}


def _decimal_str(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _note_webhook(view: View, outcome: str, webhook_id: str) -> None:
    ids: list[str] = view["webhooks"][outcome]
    if webhook_id not in ids:
        ids.append(webhook_id)
    pending: list[str] = view["webhooks"].get("pending", [])
    if webhook_id in pending:
        pending.remove(webhook_id)


def _issued(view: View, webhook_id: uuid.UUID) -> None:
    """A webhook the processor sent to the deliverer for this event: pending
    until its WebhookDelivered or WebhookAbandoned (same partition, later).

    The ids are the processor's own (``services/processor/decide.py``), so
    an event it webhooks once is counted once however often it is folded.
    A view written before this field existed starts counting from here.
    """
    text = str(webhook_id)
    hooks = view["webhooks"]
    if text in hooks["delivered"] or text in hooks["abandoned"]:
        return
    pending: list[str] = hooks.setdefault("pending", [])
    if text not in pending:
        pending.append(text)


def _step(view: View, index: int | None) -> dict[str, Any] | None:
    if index is None or not 0 <= index < len(view["steps"]):
        return None
    step: dict[str, Any] = view["steps"][index]
    return step


def _iso(value: Any) -> str:
    return str(value.isoformat())
