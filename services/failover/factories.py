"""Every event and command the rules produce, and every id they carry.

Each decision and command has a deterministic id (uuid5 of the dispatch, the
step or status, and the kind), so taking a decision again (a redelivered
input, a re-assertion after a crash) makes the very same event, and every
consumer drops the repeat. This module is the one place those ids are built.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from events.base import deterministic_id, uuid_of
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import (
    MessageStatusReceived,
    StepStarted,
    StepTimedOut,
    TimerScheduled,
    Usage,
    UsageAmended,
    WorkflowCompleted,
    WorkflowFailed,
)
from services.failover.payloads import send_failure_payload, status_payload
from services.failover.state import DispatchState, Price, StepState

TimerReason = Literal["expiry", "final_step_limit"]


def command_id(dispatch_uuid: str, step: int) -> uuid.UUID:
    """The SendMessage's id, which the sender passes to the provider as client_ref."""
    return deterministic_id(dispatch_uuid, step, "send")


def final_webhook_id(dispatch_uuid: str) -> uuid.UUID:
    return deterministic_id(dispatch_uuid, "final", "webhook")


def status_webhook_id(dispatch_uuid: str, key: str) -> uuid.UUID:
    """A status webhook's id, from the status's :func:`status_key`."""
    return deterministic_id(dispatch_uuid, key, "status-webhook")


def send_failure_webhook_id(dispatch_uuid: str, step: int) -> uuid.UUID:
    return deterministic_id(dispatch_uuid, step, "send-failed-webhook")


def status_key(event: MessageStatusReceived) -> str:
    """Identifies one status callback. The price is part of it: two callbacks
    that differ only in their usage are two facts, and the second one's price
    must reach the client and the total."""
    price = event.usage.price if event.usage is not None else ""
    return f"{event.message_uuid}|{event.status}|{event.timestamp.isoformat()}|{price}"


def step_started(
    state: DispatchState, step: int, at: datetime, deadline: datetime
) -> tuple[StepStarted, SendMessage]:
    """``StepStarted`` (with the step's guard ``deadline``) and its ``SendMessage``."""
    command = command_id(state.dispatch_uuid, step)
    started = StepStarted(
        event_id=deterministic_id(state.dispatch_uuid, step, "step-started"),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=at,
        step=step,
        channel=state.workflow.channel(step),
        command_id=command,
        deadline_at=deadline,
    )
    send = SendMessage(
        event_id=command,
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=at,
        application_id=state.application_id,
        step=step,
        message=state.workflow.message(step),
    )
    return started, send


def timer_scheduled(
    state: DispatchState, step: int, armed_at: datetime, deadline: datetime, reason: TimerReason
) -> TimerScheduled:
    """A deadline counted from the step's submission."""
    return TimerScheduled(
        event_id=deterministic_id(state.dispatch_uuid, step, "timer"),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=armed_at,
        step=step,
        deadline_at=deadline,
        reason=reason,
    )


def step_timed_out(
    state: DispatchState, step: int, deadline: datetime, now: datetime
) -> StepTimedOut:
    return StepTimedOut(
        event_id=deterministic_id(state.dispatch_uuid, step, "timed-out"),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=now,
        step=step,
        deadline_at=deadline,
        tick_at=now,
    )


def outcome_decided(
    state: DispatchState, step: int, at: datetime, reason: str | None
) -> WorkflowCompleted | WorkflowFailed:
    """``WorkflowCompleted`` (``reason`` None: the step met its condition) or
    ``WorkflowFailed`` for ``reason``."""
    dispatch_uuid = uuid_of(state.dispatch_uuid)
    if reason is None:
        message_uuid = state.steps[step].message_uuid if step < len(state.steps) else None
        return WorkflowCompleted(
            event_id=deterministic_id(state.dispatch_uuid, step, "completed"),
            dispatch_uuid=dispatch_uuid,
            occurred_at=at,
            step=step,
            message_uuid=message_uuid,
        )
    return WorkflowFailed(
        event_id=deterministic_id(state.dispatch_uuid, step, "failed"),
        dispatch_uuid=dispatch_uuid,
        occurred_at=at,
        step=step,
        reason=reason,
    )


def final_report(state: DispatchState) -> DeliverWebhook:
    """The final report webhook, from the report the fold built with the outcome."""
    report = state.final_report
    assert report is not None
    return DeliverWebhook(
        event_id=final_webhook_id(state.dispatch_uuid),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=datetime.fromisoformat(str(report["timestamp"]).replace("Z", "+00:00")),
        application_id=state.application_id,
        kind="final",
        payload=report,
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
    """A failed send, reported to the client as a ``rejected`` status."""
    assert step.send_failed is not None
    return DeliverWebhook(
        event_id=send_failure_webhook_id(state.dispatch_uuid, step.index),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=step.send_failed.at,
        application_id=state.application_id,
        kind="status",
        payload=send_failure_payload(state, step),
    )


def usage_amended(
    state: DispatchState, message_uuid: str, usage: Price, total: Price, at: datetime
) -> UsageAmended:
    return UsageAmended(
        event_id=deterministic_id(
            state.dispatch_uuid, message_uuid, usage["price"], "usage-amended"
        ),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=at,
        message_uuid=message_uuid,
        usage=Usage(price=usage["price"], currency=usage["currency"]),
        total=Usage(price=total["price"], currency=total["currency"]),
    )
