"""Builders for realistic event sequences used by projection and audit tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from events.base import deterministic_id
from events.dispatch import (
    ErrorDetail,
    MessageSendFailed,
    MessageStatusReceived,
    MessageSubmitted,
    StepStarted,
    StepTimedOut,
    TimerScheduled,
    Usage,
    WebhookDelivered,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRequested,
)
from services.failover.factories import final_webhook_id

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def sms_item(
    number: str = "447700900001", failover: dict[str, Any] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "from": {"type": "sms", "number": "447700900000"},
        "to": {"type": "sms", "number": number},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if failover is not None:
        item["failover"] = failover
    return item


def whatsapp_item(number: str = "447700900002") -> dict[str, Any]:
    return {
        "from": {"type": "whatsapp", "number": "447700900000"},
        "to": {"type": "whatsapp", "number": number},
        "message": {"content": {"type": "text", "text": "hello"}},
        "failover": {"expiry_time": 60, "condition_status": "read"},
    }


def failover_history(dispatch: uuid.UUID, app: str = "app-1") -> list[Any]:
    """WhatsApp times out, SMS is delivered with a price, the final report is delivered."""
    t = T0
    cmd0 = deterministic_id(dispatch, 0, "send")
    cmd1 = deterministic_id(dispatch, 1, "send")
    return [
        WorkflowRequested(
            dispatch_uuid=dispatch,
            application_id=app,
            workflow=[whatsapp_item(), sms_item()],
            occurred_at=t,
        ),
        StepStarted(
            dispatch_uuid=dispatch,
            step=0,
            channel="whatsapp",
            command_id=cmd0,
            occurred_at=t,
            deadline_at=t + timedelta(days=1),
        ),
        MessageSubmitted(
            dispatch_uuid=dispatch,
            step=0,
            command_id=cmd0,
            message_uuid="m-0",
            occurred_at=t + timedelta(seconds=1),
        ),
        TimerScheduled(
            dispatch_uuid=dispatch, step=0, deadline_at=t + timedelta(seconds=61), reason="expiry"
        ),
        MessageStatusReceived(
            dispatch_uuid=dispatch,
            message_uuid="m-0",
            step=0,
            status="submitted",
            timestamp=t + timedelta(seconds=1),
        ),
        StepTimedOut(
            dispatch_uuid=dispatch,
            step=0,
            deadline_at=t + timedelta(seconds=61),
            tick_at=t + timedelta(seconds=61),
        ),
        StepStarted(
            dispatch_uuid=dispatch,
            step=1,
            channel="sms",
            command_id=cmd1,
            occurred_at=t + timedelta(seconds=61),
            deadline_at=t + timedelta(days=1, seconds=61),
        ),
        MessageSubmitted(
            dispatch_uuid=dispatch,
            step=1,
            command_id=cmd1,
            message_uuid="m-1",
            occurred_at=t + timedelta(seconds=62),
        ),
        MessageStatusReceived(
            dispatch_uuid=dispatch,
            message_uuid="m-1",
            step=1,
            status="delivered",
            timestamp=t + timedelta(seconds=63),
            usage=Usage(price="0.0333"),
        ),
        WorkflowCompleted(
            dispatch_uuid=dispatch,
            step=1,
            message_uuid="m-1",
            occurred_at=t + timedelta(seconds=63),
        ),
        WebhookDelivered(
            dispatch_uuid=dispatch,
            webhook_id=final_webhook_id(str(dispatch)),  # the id the processor gives it
            kind="final",
            attempts=1,
            http_status=200,
        ),
        # A late price for the first message, after the final report.
        MessageStatusReceived(
            dispatch_uuid=dispatch,
            message_uuid="m-0",
            step=0,
            status="delivered",
            timestamp=t + timedelta(seconds=90),
            usage=Usage(price="0.05"),
        ),
    ]


def rejected_history(dispatch: uuid.UUID, app: str = "app-1") -> list[Any]:
    cmd0 = deterministic_id(dispatch, 0, "send")
    return [
        WorkflowRequested(dispatch_uuid=dispatch, application_id=app, workflow=[sms_item()]),
        StepStarted(
            dispatch_uuid=dispatch,
            step=0,
            channel="sms",
            command_id=cmd0,
            deadline_at=datetime.now(UTC) + timedelta(days=1),
        ),
        MessageSendFailed(
            dispatch_uuid=dispatch,
            step=0,
            command_id=cmd0,
            error=ErrorDetail(code=1020, reason="Invalid params"),
            http_status=422,
        ),
        WorkflowFailed(dispatch_uuid=dispatch, step=0, reason="send failed"),
    ]
