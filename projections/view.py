"""The workflow read model: the failover rules' own state of a dispatch, shown.

The view folds each event through the same fold the processor runs
(``services/failover``) and renders what a user needs from the resulting
state: each step's phase, deadline and message, the outcome and the true
usage. What the rules do not keep (every status's details, when the request
came and the dispatch ended, webhook outcomes, the webhooks the processor
issued that have no outcome yet) is kept beside it. Both travel
inside the view under ``PRIVATE`` (the stored view is the projector's only
memory of a dispatch); :func:`public` is the view without it, as the API
shows it. Applying an event twice leaves the view as it was, so a replay or a
redelivered event cannot double-count a status or a price.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from events.codec import LogEvent
from events.dispatch import (
    MessageSendFailed,
    MessageStatusReceived,
    Tick,
    WebhookAbandoned,
    WebhookDelivered,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRequested,
)
from services.failover import factories
from services.failover.decide import over_status_bound, step_phase
from services.failover.fold import apply as fold
from services.failover.state import DispatchState
from services.processor.state_codec import encode_state, state_from_stored, stored_form

View = dict[str, Any]

PRIVATE = "_fold"


@functools.cache
def max_statuses_per_message() -> int:
    """Distinct statuses kept per message, as the processor keeps them (read
    once; the projector validates the variable at start with its settings)."""
    from projections.settings import ViewSettings  # the settings import the stores

    return ViewSettings().max_statuses_per_message


def public(view: View) -> View:
    """The view as the API shows it."""
    return {k: v for k, v in view.items() if k != PRIVATE}


def state_of(view: View) -> DispatchState:
    """The rules' state of the dispatch, as the view folded it."""
    return unpack(view).state


@dataclass
class Unpacked:
    """A view taken apart for folding: the rules' state, and what the view
    keeps beside it. Events fold into it in place; :func:`pack` renders it."""

    state: DispatchState
    extras: dict[str, Any]


def unpack(view: View) -> Unpacked:
    # A deep copy: the state's objects take the parsed dicts over, and the
    # view's own must not change with them (nor with the extras folded into).
    private = orjson.loads(orjson.dumps(view[PRIVATE]))
    return Unpacked(state_from_stored(private["state"]), private["extras"])


def pack(unpacked: Unpacked) -> View:
    return render(unpacked.state, unpacked.extras)


def pack_to_store(unpacked: Unpacked) -> View:
    """The view as :func:`pack` renders it, for a store to write: the rules'
    state is in it as the JSON the processor's codec writes, not parsed back
    into objects only to be written out again (a fifth of the projector's CPU
    when each batch brings one event of a dispatch; bench/RESULTS.md, "The
    projector's views")."""
    return render(
        unpacked.state, unpacked.extras, stored_state=orjson.Fragment(encode_state(unpacked.state))
    )


def requested(event: WorkflowRequested) -> Unpacked:
    """A dispatch's first view, from its request."""
    extras: dict[str, Any] = {
        "requested_at": event.occurred_at.isoformat(),
        "template": event.template,
        "finished_at": None,
        "entries": {},
        "webhooks": {"delivered": [], "abandoned": [], "pending": []},
        "final": {"delivered": False, "abandoned": False},
    }
    state = fold(None, event)
    assert state is not None
    return Unpacked(state, extras)


def apply(view: View | None, event: LogEvent) -> View | None:
    """Fold one event into the view (``None`` until WorkflowRequested is seen)."""
    if isinstance(event, Tick):
        return view
    if isinstance(event, WorkflowRequested):
        return view if view is not None else pack(requested(event))
    if view is None:
        return None  # events of a dispatch whose request we never saw
    unpacked = unpack(view)
    fold_into(unpacked, event)
    return pack(unpacked)


def fold_into(unpacked: Unpacked, event: LogEvent) -> None:
    """Fold one event into an unpacked view (a request or a tick changes nothing:
    the view exists already, and ticks are about time, not one dispatch)."""
    if isinstance(event, Tick | WorkflowRequested):
        return
    state, extras = unpacked.state, unpacked.extras
    if isinstance(event, MessageStatusReceived):
        if over_status_bound(state, event, max_statuses_per_message()):
            return  # the processor drops it too (Policy.max_statuses_per_message)
        before = len(state.seen)
        fold(state, event)
        if len(state.seen) > before:
            extras["entries"].setdefault(event.message_uuid, []).append(_entry(event))
            key = state.seen[before]
            _issued(extras, factories.status_webhook_id(state.dispatch_uuid, key))
        return
    finished = state.finished
    fold(state, event)
    if not finished and state.finished and isinstance(event, WorkflowCompleted | WorkflowFailed):
        extras["finished_at"] = event.occurred_at.isoformat()
        _issued(extras, factories.final_webhook_id(state.dispatch_uuid))
    if isinstance(event, MessageSendFailed):
        failed = state.step(event.step)
        if failed and failed.send_failed and failed.send_failed.event_id == str(event.event_id):
            _issued(extras, factories.send_failure_webhook_id(state.dispatch_uuid, event.step))
    if isinstance(event, WebhookDelivered | WebhookAbandoned):
        outcome = "delivered" if isinstance(event, WebhookDelivered) else "abandoned"
        webhook_id = str(event.webhook_id)
        ids: list[str] = extras["webhooks"][outcome]
        if webhook_id not in ids:
            ids.append(webhook_id)
        pending: list[str] = extras["webhooks"]["pending"]
        if webhook_id in pending:
            pending.remove(webhook_id)
        if event.kind == "final":
            extras["final"][outcome] = True


def _issued(extras: dict[str, Any], webhook_id: uuid.UUID) -> None:
    """A webhook the processor sent the deliverer for this event (the ids are
    the rules' own): pending until its WebhookDelivered or WebhookAbandoned,
    counted once however often the event is folded."""
    text = str(webhook_id)
    hooks = extras["webhooks"]
    if text in hooks["delivered"] or text in hooks["abandoned"] or text in hooks["pending"]:
        return
    hooks["pending"].append(text)


def refold(events: list[LogEvent]) -> View | None:
    """The view of a dispatch from its whole history."""
    view: View | None = None
    for event in events:
        view = apply(view, event)
    return view


def render(state: DispatchState, extras: dict[str, Any], *, stored_state: Any = None) -> View:
    """The view of ``state``: every field that follows from the rules comes
    from the state, never from the events again. ``stored_state``: the state
    as stored, if already encoded."""
    current = state.current
    return {
        "dispatch_uuid": state.dispatch_uuid,
        "application_id": state.application_id,
        "template": extras["template"],
        "status": state.outcome or "in_progress",
        "current_step": current.index if current is not None else None,
        "requested_at": extras["requested_at"],
        "finished_at": extras["finished_at"],
        "steps": [_step_view(state, index, extras) for index in range(len(state.workflow))],
        "usage": _total(state),
        "final_report": {"status": state.outcome, **extras["final"]},
        "webhooks": extras["webhooks"],
        PRIVATE: {
            "state": stored_state if stored_state is not None else stored_form(state),
            "extras": extras,
        },
    }


def _step_view(state: DispatchState, index: int, extras: dict[str, Any]) -> dict[str, Any]:
    item = state.workflow[index]
    failover = item.failover
    step = state.step(index)
    message_uuid = None
    if step is not None:
        message_uuid = step.message_uuid or (step.command_id if step.send_failed else None)
    usage = state.usage.get(message_uuid) if message_uuid is not None else None
    failure = step.send_failed if step is not None else None
    return {
        "step": index,
        "channel": item.to.type,
        "to": state.workflow.as_sent[index].get("to"),
        "condition_status": failover.condition_status if failover is not None else None,
        "expiry_time": failover.expiry_time if failover is not None else None,
        "state": step_phase(state, index),
        "message_uuid": message_uuid,
        "started_at": _iso(step.started_at) if step is not None else None,
        "submitted_at": _iso(step.submitted_at) if step is not None else None,
        "deadline_at": _iso(step.deadline_at) if step is not None else None,
        "error": {"code": failure.code, "reason": failure.reason} if failure else None,
        "outcome_unknown": step.outcome_unknown if step is not None else False,
        "usage": {"currency": usage["currency"], "price": usage["price"]} if usage else None,
        "statuses": extras["entries"].get(message_uuid, []) if message_uuid else [],
    }


def _entry(event: MessageStatusReceived) -> dict[str, Any]:
    entry: dict[str, Any] = {"status": event.status, "timestamp": event.timestamp.isoformat()}
    if event.error is not None:
        entry["error"] = event.error.model_dump()
    if event.usage is not None:
        entry["usage"] = event.usage.model_dump()
    return entry


def _total(state: DispatchState) -> dict[str, str]:
    """The true total (the final report's, and every later amendment's)."""
    total = state.total_usage()
    return {
        "price": format(Decimal(total["price"]).normalize(), "f"),
        "currency": total["currency"],
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
