"""``decide``: what the processor emits in answer to one event.

Pure: time enters only through event timestamps (and ``Tick.now`` via
:func:`on_deadline`), so tests skip time by feeding later events.

Shape of one step of the processor, for an event at a new offset::

    state = apply(state, event)
    outputs = decide(before, state, event)   # also folds its own decisions

Decision events are folded into the state as they are taken, so when their
echo comes back from ``dispatch.events`` the fold treats it as a no-op.
Every decision and command has a deterministic id, so :func:`reassert` can
re-emit them after a crash without creating anything new downstream.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from events.base import deterministic_id, uuid_of
from events.codec import LogEvent
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import (
    MessageSendFailed,
    MessageStatusReceived,
    StepStarted,
    StepTimedOut,
    TimerScheduled,
    Usage,
    UsageAmended,
    WorkflowCompleted,
    WorkflowFailed,
)
from services.processor.fold import (
    apply,
    expiry_deadline,
    start_timer_id,
    status_key,
    submission_timer_id,
)
from services.processor.payloads import send_failure_payload, status_payload
from services.processor.state import FAILED_STATUSES, DispatchState, StepState, channel_of

Output = LogEvent | SendMessage | DeliverWebhook


@dataclass(frozen=True)
class Policy:
    """Configuration the decisions depend on (recorded in TimerScheduled, so a
    replay under another configuration still reproduces the same decisions)."""

    final_step_limit: timedelta = timedelta(hours=24)
    # Distinct statuses kept (and webhooked) per message; more are dropped, so
    # no input can grow a dispatch's state past a fixed bound.
    max_statuses_per_message: int = 16


def command_id(dispatch_uuid: str, step: int) -> uuid.UUID:
    return deterministic_id(dispatch_uuid, step, "send")


def final_webhook_id(dispatch_uuid: str) -> uuid.UUID:
    return deterministic_id(dispatch_uuid, "final", "webhook")


def send_failure_webhook_id(dispatch_uuid: str, step: int) -> uuid.UUID:
    return deterministic_id(dispatch_uuid, step, "send-failed-webhook")


def status_webhook_id(dispatch_uuid: str, key: str) -> uuid.UUID:
    """The status webhook's id, from the status's ``status_key``."""
    return deterministic_id(dispatch_uuid, key, "status-webhook")


def decide(
    before_seen: int,
    state: DispatchState,
    event: LogEvent,
    policy: Policy,
) -> list[Output]:
    """Outputs for ``event``, already folded into ``state`` (``before_seen`` is
    ``len(state.seen)`` before the fold: it tells a new status from a duplicate)."""
    at = event.occurred_at
    outputs: list[Output] = []
    if isinstance(event, MessageStatusReceived) and len(state.seen) > before_seen:
        # Every status of every message, late ones included, goes to the client.
        # The key the fold just recorded for it (the first one past before_seen).
        outputs.append(status_webhook(state, event, state.seen[before_seen]))
    if isinstance(event, MessageSendFailed):
        failed = state.steps[event.step] if event.step < len(state.steps) else None
        # Reported like a status (rejected), even when the dispatch has moved on.
        if failed is not None and (failed.send_failed or {}).get("event_id") == str(event.event_id):
            outputs.append(send_failure_webhook(state, failed))
    outputs.extend(advance(state, at, policy))
    return outputs


def on_deadline(
    state: DispatchState, step: int, deadline_at: datetime, now: datetime, policy: Policy
) -> list[Output]:
    """A tick at ``now`` found step ``step``'s deadline due. Ignored when the
    step is no longer waiting (a status won the race) or was re-armed."""
    current = state.current
    if (
        current is None
        or not state.waiting(step)
        or current.deadline_at != deadline_at.isoformat()
        or deadline_at > now
    ):
        return []
    timed_out = StepTimedOut(
        event_id=deterministic_id(state.dispatch_uuid, step, "timed-out"),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=now,
        step=step,
        deadline_at=deadline_at,
        tick_at=now,
    )
    apply(state, timed_out)
    return [timed_out, *advance(state, now, policy)]


def advance(state: DispatchState, at: datetime, policy: Policy) -> list[Output]:
    """Take every decision the state now calls for, folding each as it is taken."""
    outputs: list[Output] = []
    while True:
        decided = _next_decision(state, at, policy)
        if not decided:
            return outputs
        for output in decided:
            if not isinstance(output, SendMessage | DeliverWebhook):
                apply(state, output)
        outputs.extend(decided)


def _next_decision(state: DispatchState, at: datetime, policy: Policy) -> list[Output]:
    if state.finished:
        return _usage_amendments(state, at)
    current = state.current
    if current is None:
        return start_step(state, 0, at, at + policy.final_step_limit)
    if current.timed_out:
        return _step_failed(state, current, at, "expired", policy)
    verdict = _verdict(state, current)
    if verdict == "met":
        return _finish(state, current, "completed", at, "condition met")
    if verdict is not None:
        return _step_failed(state, current, at, verdict, policy)
    if current.submitted_at is not None and not current.armed_on_submission:
        return [timer_event(state, current, policy)]
    if current.submitted_at is None and current.send_failed is None and not current.deadline_at:
        # A step started by an older StepStarted, without its guard deadline.
        return [timer_event(state, current, policy)]
    return []


def _verdict(state: DispatchState, step: StepState) -> str | None:
    """``met``, the failure reason, or None while the step is undecided."""
    if step.send_failed is not None:
        return "send_failed"
    condition = state.condition_statuses(step.index)
    for status in step.statuses:
        if status in condition:
            return "met"
        if status in FAILED_STATUSES:
            return status
    return None


def _step_failed(
    state: DispatchState, step: StepState, at: datetime, reason: str, policy: Policy
) -> list[Output]:
    if state.is_last(step.index):
        return _finish(state, step, "error", at, reason)
    return start_step(state, step.index + 1, at, at + policy.final_step_limit)


def start_step(state: DispatchState, step: int, at: datetime, deadline: datetime) -> list[Output]:
    """``StepStarted`` (with the step's guard ``deadline``) and its ``SendMessage``."""
    item = state.workflow[step]
    command = command_id(state.dispatch_uuid, step)
    dispatch_uuid = uuid_of(state.dispatch_uuid)
    return [
        StepStarted(
            event_id=deterministic_id(state.dispatch_uuid, step, "step-started"),
            dispatch_uuid=dispatch_uuid,
            occurred_at=at,
            step=step,
            channel=channel_of(item),
            command_id=command,
            deadline_at=deadline,
        ),
        send_command(state, step, at, command),
    ]


def send_command(
    state: DispatchState, step: int, at: datetime, command: uuid.UUID | None = None
) -> SendMessage:
    message = {k: v for k, v in state.workflow[step].items() if k != "failover"}
    return SendMessage(
        event_id=command or command_id(state.dispatch_uuid, step),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=at,
        application_id=state.application_id,
        step=step,
        message=message,
    )


def timer_event(state: DispatchState, step: StepState, policy: Policy) -> TimerScheduled:
    """The step's deadline: from its submission (expiry, or the last-step limit),
    or, before any submission, a guard of the last-step limit from its start."""
    reason: Literal["expiry", "final_step_limit"] = "final_step_limit"
    if step.submitted_at is None:
        armed_at = datetime.fromisoformat(step.started_at or "")
        deadline = armed_at + policy.final_step_limit
        event_id = start_timer_id(state.dispatch_uuid, step.index)
    else:
        armed_at = datetime.fromisoformat(step.submitted_at)
        event_id = submission_timer_id(state.dispatch_uuid, step.index)
        if state.is_last(step.index):
            deadline = armed_at + policy.final_step_limit
        else:  # a state folded before the fold armed these itself
            deadline, reason = expiry_deadline(state, step.index, armed_at), "expiry"
    if step.deadline_at is not None and (step.armed_on_submission or step.submitted_at is None):
        # Re-asserting an armed timer: keep the recorded deadline, whatever the config now.
        deadline = datetime.fromisoformat(step.deadline_at)
    return TimerScheduled(
        event_id=event_id,
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=armed_at,
        step=step.index,
        deadline_at=deadline,
        reason=reason,
    )


def _finish(
    state: DispatchState, step: StepState, outcome: str, at: datetime, reason: str
) -> list[Output]:
    dispatch_uuid = uuid_of(state.dispatch_uuid)
    decision: WorkflowCompleted | WorkflowFailed
    if outcome == "completed":
        decision = WorkflowCompleted(
            event_id=deterministic_id(state.dispatch_uuid, step.index, "completed"),
            dispatch_uuid=dispatch_uuid,
            occurred_at=at,
            step=step.index,
            message_uuid=step.message_uuid,
        )
    else:
        decision = WorkflowFailed(
            event_id=deterministic_id(state.dispatch_uuid, step.index, "failed"),
            dispatch_uuid=dispatch_uuid,
            occurred_at=at,
            step=step.index,
            reason=reason,
        )
    apply(state, decision)
    # Folded here already so the report is built once, from the state at this moment.
    return [decision, final_report(state)]


def final_report(state: DispatchState) -> DeliverWebhook:
    assert state.final_report is not None
    return DeliverWebhook(
        event_id=final_webhook_id(state.dispatch_uuid),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=datetime.fromisoformat(state.final_report["timestamp"].replace("Z", "+00:00")),
        application_id=state.application_id,
        kind="final",
        payload=state.final_report,
    )


def status_webhook(
    state: DispatchState, event: MessageStatusReceived, key: str | None = None
) -> DeliverWebhook:
    """The status webhook for ``event`` (``key``: its ``status_key``, if known)."""
    return DeliverWebhook(
        event_id=status_webhook_id(state.dispatch_uuid, key or status_key(event)),
        dispatch_uuid=event.dispatch_uuid,
        occurred_at=event.timestamp,
        application_id=state.application_id,
        kind="status",
        payload=status_payload(state.dispatch_uuid, event),
    )


def send_failure_webhook(state: DispatchState, step: StepState) -> DeliverWebhook:
    payload = send_failure_payload(state, step)
    return DeliverWebhook(
        event_id=send_failure_webhook_id(state.dispatch_uuid, step.index),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=datetime.fromisoformat(str((step.send_failed or {})["at"])),
        application_id=state.application_id,
        kind="status",
        payload=payload,
    )


def _usage_amendments(state: DispatchState, at: datetime) -> list[Output]:
    reported = state.reported_usage
    changed = [
        (message_uuid, usage)
        for message_uuid, usage in state.usage.items()
        if reported.get(message_uuid) != usage["price"]
    ]
    if not changed:
        return []  # every event after the report asks; the total is summed only if needed
    total = state.total_usage()
    amendments: list[Output] = []
    for message_uuid, usage in changed:
        amendments.append(
            UsageAmended(
                event_id=deterministic_id(
                    state.dispatch_uuid, message_uuid, usage["price"], "usage-amended"
                ),
                dispatch_uuid=uuid_of(state.dispatch_uuid),
                occurred_at=at,
                message_uuid=message_uuid,
                usage=Usage(**usage),
                total=Usage(**total),
            )
        )
    return amendments
