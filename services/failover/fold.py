"""``apply(state, event) -> state``: the fold of ``dispatch.events``, one handler per event type.

Every transition is idempotent: applying an event whose effect the state
already reflects changes nothing. That is what lets the processor apply its own
decisions at once and treat their echo from the log as a no-op, and lets an
at-least-once redelivery pass through harmlessly.

Statuses never move the workflow by themselves; only decision events do
(``StepStarted``, ``StepTimedOut``, ``WorkflowCompleted``, ``WorkflowFailed``).
Events reach the fold in today's shapes: the codec upgrades older records
(``events/upcasts.py``), so no handler knows about older logs.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from events.base import uuid_text
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
    WebhookAttemptFailed,
    WebhookDelivered,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRequested,
)
from services.failover.factories import status_key
from services.failover.payloads import final_report_payload
from services.failover.state import DispatchState, Outcome, SendFailure, StepState
from services.failover.workflow import Workflow


def apply(state: DispatchState | None, event: LogEvent) -> DispatchState | None:
    """Fold one event (``None`` until the dispatch's ``WorkflowRequested``).

    Raises :class:`~services.failover.workflow.InvalidWorkflow` for a request
    whose workflow is not a list of items."""
    if isinstance(event, WorkflowRequested):
        return state if state is not None else requested(event)
    if state is None:
        return None  # nothing to fold into: the dispatch was never requested
    _HANDLERS[type(event)](state, event)
    return state


def requested(event: WorkflowRequested) -> DispatchState:
    return DispatchState(
        dispatch_uuid=uuid_text(event.dispatch_uuid),
        application_id=event.application_id,
        workflow=Workflow.requested(event.workflow),
    )


def expiry_deadline(state: DispatchState, step: int, submitted_at: datetime) -> datetime:
    """A non-last step's deadline: its submission plus its ``expiry_time``."""
    return submitted_at + timedelta(seconds=state.workflow.failover(step).expiry_time)


def _step_started(state: DispatchState, event: StepStarted) -> None:
    if event.step == len(state.steps) and event.step < len(state.workflow):
        state.steps.append(
            StepState(
                index=event.step,
                channel=event.channel,
                command_id=str(event.command_id),
                started_at=event.occurred_at,
                deadline_at=event.deadline_at,
            )
        )


def _submitted(state: DispatchState, event: MessageSubmitted) -> None:
    step = state.step(event.step)
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
    step = state.step(event.step)
    if step is None or step.send_failed is not None or step.submitted_at is not None:
        return
    step.outcome_unknown = True
    _mark_submitted(state, step, event.attempted_at)


def _mark_submitted(state: DispatchState, step: StepState, at: datetime) -> None:
    if step.submitted_at is not None:
        return
    step.submitted_at = at
    in_flight = state.waiting(step.index)
    if in_flight and not state.is_last(step.index) and not step.armed_on_submission:
        # A non-last step's deadline follows from the log alone (this
        # submission and the workflow's expiry_time), so the fold arms it and
        # no decision event carries it. A step no longer waiting keeps the
        # deadline it ended with.
        step.deadline_at = expiry_deadline(state, step.index, at)
        step.armed_on_submission = True


def _send_failed(state: DispatchState, event: MessageSendFailed) -> None:
    step = state.step(event.step)
    if step is not None and step.send_failed is None and step.message_uuid is None:
        step.send_failed = SendFailure(
            code=event.error.code,
            reason=event.error.reason,
            at=event.occurred_at,
            event_id=str(event.event_id),
        )


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
        candidate = state.step(event.step)
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


def _timer_scheduled(state: DispatchState, event: TimerScheduled) -> None:
    """A deadline counted from the step's submission (a last step's limit).
    One that came before the submission (a guard recorded on its own by older
    processors, upgraded to ``start_guard``) arms nothing: StepStarted carries
    the guard."""
    step = state.step(event.step)
    if step is not None and step.submitted_at is not None and not step.armed_on_submission:
        step.deadline_at = event.deadline_at
        step.armed_on_submission = True


def _timed_out(state: DispatchState, event: StepTimedOut) -> None:
    if state.waiting(event.step):
        state.steps[event.step].timed_out = True


def _finished(state: DispatchState, event: WorkflowCompleted | WorkflowFailed) -> None:
    if state.outcome is not None:
        return
    outcome: Outcome = "completed" if isinstance(event, WorkflowCompleted) else "error"
    state.final_report = final_report_payload(state, outcome, event.occurred_at)
    state.outcome = outcome
    state.outcome_step = event.step
    state.outcome_reason = event.reason if isinstance(event, WorkflowFailed) else "condition met"
    state.reported_usage = {m: u["price"] for m, u in state.usage.items()}


def _usage_amended(state: DispatchState, event: UsageAmended) -> None:
    state.reported_usage[event.message_uuid] = event.usage.price


def _nothing(state: DispatchState, event: Any) -> None:
    """Facts for the read models (webhook outcomes) and time: nothing to fold."""


_HANDLERS: dict[type, Callable[[DispatchState, Any], None]] = {
    StepStarted: _step_started,
    MessageSubmitted: _submitted,
    MessageOutcomeUnknown: _outcome_unknown,
    MessageSendFailed: _send_failed,
    MessageStatusReceived: _status,
    TimerScheduled: _timer_scheduled,
    StepTimedOut: _timed_out,
    WorkflowCompleted: _finished,
    WorkflowFailed: _finished,
    UsageAmended: _usage_amended,
    WebhookDelivered: _nothing,
    WebhookAbandoned: _nothing,
    WebhookAttemptFailed: _nothing,
    Tick: _nothing,
}
