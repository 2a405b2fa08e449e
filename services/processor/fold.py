"""``apply(state, event) -> state``: the fold of ``dispatch.events``.

Every transition is idempotent: applying an event whose effect the state
already reflects changes nothing. That is what lets the processor apply its own
decisions at once and treat their echo from the log as a no-op, and lets an
at-least-once redelivery pass through harmlessly.

Statuses never move the workflow by themselves; only decision events do
(``StepStarted``, ``StepTimedOut``, ``WorkflowCompleted``, ``WorkflowFailed``).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import lru_cache

from events.base import deterministic_id, uuid_text
from events.codec import LogEvent
from events.dispatch import (
    MessageOutcomeUnknown,
    MessageSendFailed,
    MessageStatusReceived,
    MessageSubmitted,
    StepStarted,
    StepTimedOut,
    TimerScheduled,
    UsageAmended,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRequested,
)
from services.processor.payloads import final_report_payload
from services.processor.state import DispatchState, StepState


@lru_cache(maxsize=1024)
def submission_timer_id(dispatch_uuid: str, step: int) -> uuid.UUID:
    # Remembered: taken for the TimerScheduled, then again as it is folded.
    return deterministic_id(dispatch_uuid, step, "timer")


def start_timer_id(dispatch_uuid: str, step: int) -> uuid.UUID:
    return deterministic_id(dispatch_uuid, step, "start-timer")


def expiry_deadline(state: DispatchState, step: int, submitted_at: datetime) -> datetime:
    """A non-last step's deadline: its submission plus its ``expiry_time``."""
    return submitted_at + timedelta(seconds=int(state.workflow[step]["failover"]["expiry_time"]))


def status_key(event: MessageStatusReceived) -> str:
    """Identifies one status callback. The price is part of it: two callbacks
    that differ only in their usage are two facts, and the second one's price
    must reach the client and the total."""
    price = event.usage.price if event.usage is not None else ""
    return f"{event.message_uuid}|{event.status}|{event.timestamp.isoformat()}|{price}"


def over_status_bound(state: DispatchState, event: MessageStatusReceived, per_message: int) -> bool:
    """Whether a new status would take the state past its bound: ``per_message``
    distinct statuses per message, and as many per step (plus one message's
    worth) in all, however many message_uuids a caller makes up. A status
    already folded is never over: it is a duplicate, re-asserted as usual."""
    key = status_key(event)
    if key in state.seen:
        return False
    if len(state.seen) >= per_message * (len(state.workflow) + 1):
        return True
    prefix = event.message_uuid + "|"
    return sum(1 for seen in state.seen if seen.startswith(prefix)) >= per_message


def apply(state: DispatchState | None, event: LogEvent) -> DispatchState | None:
    if isinstance(event, WorkflowRequested):
        if state is not None:
            return state
        return DispatchState(
            dispatch_uuid=uuid_text(event.dispatch_uuid),
            application_id=event.application_id,
            workflow=[dict(item) for item in event.workflow],
        )
    if state is None:
        return None  # nothing to fold into: the dispatch was never requested
    if isinstance(event, StepStarted):
        if event.step == len(state.steps) and event.step < len(state.workflow):
            state.steps.append(
                StepState(
                    index=event.step,
                    channel=event.channel,
                    command_id=str(event.command_id),
                    started_at=event.occurred_at.isoformat(),
                    deadline_at=event.deadline_at.isoformat() if event.deadline_at else None,
                )
            )
    elif isinstance(event, MessageSubmitted):
        _submitted(state, event)
    elif isinstance(event, MessageOutcomeUnknown):
        _outcome_unknown(state, event)
    elif isinstance(event, MessageSendFailed):
        step = _step(state, event.step)
        if step is not None and step.send_failed is None and step.message_uuid is None:
            step.send_failed = {
                "code": event.error.code,
                "reason": event.error.reason,
                "at": event.occurred_at.isoformat(),
                "event_id": str(event.event_id),
            }
    elif isinstance(event, MessageStatusReceived):
        _status(state, event)
    elif isinstance(event, TimerScheduled):
        step = _step(state, event.step)
        if step is not None:
            if event.event_id == submission_timer_id(state.dispatch_uuid, event.step):
                if not step.armed_on_submission:
                    step.deadline_at = event.deadline_at.isoformat()
                    step.armed_on_submission = True
            elif step.deadline_at is None:
                step.deadline_at = event.deadline_at.isoformat()
    elif isinstance(event, StepTimedOut):
        if state.waiting(event.step):
            state.steps[event.step].timed_out = True
    elif isinstance(event, WorkflowCompleted | WorkflowFailed):
        if state.outcome is None:
            outcome = "completed" if isinstance(event, WorkflowCompleted) else "error"
            state.final_report = final_report_payload(state, outcome, event.occurred_at)
            state.outcome = outcome
            state.outcome_step = event.step
            state.outcome_reason = (
                event.reason if isinstance(event, WorkflowFailed) else "condition met"
            )
            state.reported_usage = {m: u["price"] for m, u in state.usage.items()}
    elif isinstance(event, UsageAmended):
        state.reported_usage[event.message_uuid] = event.usage.price
    # Tick, WebhookDelivered, WebhookAbandoned, WebhookAttemptFailed: nothing to fold.
    return state


def _step(state: DispatchState, index: int) -> StepState | None:
    return state.steps[index] if 0 <= index < len(state.steps) else None


def _submitted(state: DispatchState, event: MessageSubmitted) -> None:
    step = _step(state, event.step)
    if step is None or step.send_failed is not None:
        return
    if step.message_uuid is None:
        step.message_uuid = event.message_uuid
    _mark_submitted(state, step, event.occurred_at)
    # Statuses that raced ahead of the submission now find their step.
    waiting = [s for s in state.unattributed if s["message_uuid"] == step.message_uuid]
    if waiting:
        step.statuses.extend(s["status"] for s in waiting)
        state.unattributed = [
            s for s in state.unattributed if s["message_uuid"] != step.message_uuid
        ]


def _outcome_unknown(state: DispatchState, event: MessageOutcomeUnknown) -> None:
    """The step waits as if submitted when the call was made; a status naming
    its step (by ``client_ref``) gives it its message."""
    step = _step(state, event.step)
    if step is None or step.send_failed is not None or step.submitted_at is not None:
        return
    step.outcome_unknown = True
    _mark_submitted(state, step, event.attempted_at)


def _mark_submitted(state: DispatchState, step: StepState, at: datetime) -> None:
    if step.submitted_at is not None:
        return
    step.submitted_at = at.isoformat()
    in_flight = state.waiting(step.index)
    if in_flight and not state.is_last(step.index) and not step.armed_on_submission:
        # A non-last step's deadline follows from the log alone (this
        # submission and the workflow's expiry_time), so the fold arms it
        # and no decision event carries it (logs written before carry a
        # TimerScheduled with the same deadline, folded as a no-op). A step
        # no longer waiting keeps the deadline it ended with.
        step.deadline_at = expiry_deadline(state, step.index, at).isoformat()
        step.armed_on_submission = True


def _status(state: DispatchState, event: MessageStatusReceived) -> None:
    # A price counts even on a repeated status (a provider may add it later).
    if event.usage is not None:
        state.usage[event.message_uuid] = {
            "price": event.usage.price,
            "currency": event.usage.currency,
        }
    key = status_key(event)
    if key in state.seen:
        return
    state.seen.append(key)
    step = state.step_for_message(event.message_uuid)
    if step is None and event.step is not None:
        # The gateway knew the step: claim a started step that has no message yet.
        candidate = _step(state, event.step)
        if (
            candidate is not None
            and candidate.message_uuid is None
            and candidate.send_failed is None
        ):
            candidate.message_uuid = event.message_uuid
            step = candidate
    if step is None:
        state.unattributed.append({"message_uuid": event.message_uuid, "status": event.status})
    else:
        step.statuses.append(event.status)
