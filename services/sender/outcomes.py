"""What a provider answer means, as pure logic: submitted, refused, or worth
another try."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from events.base import deterministic_id
from events.commands import SendMessage
from events.dispatch import (
    ErrorDetail,
    MessageOutcomeUnknown,
    MessageSendFailed,
    MessageSubmitted,
)


@dataclass(frozen=True)
class Submitted:
    message_uuid: str


@dataclass(frozen=True)
class Refused:
    """A final answer: the provider will not send this message."""

    http_status: int | None
    code: int | None
    reason: str


@dataclass(frozen=True)
class Transient:
    """Surely not accepted, so worth another try: a 5xx or 429 answer, a
    connection refused or not made in time."""

    reason: str
    http_status: int | None = None


@dataclass(frozen=True)
class Unknown:
    """The request went out and no answer came back (a read timeout, a cut
    connection): the provider may have accepted it. Never tried again."""

    reason: str


Answer = Submitted | Refused | Transient | Unknown


def classify(status: int, body: Any) -> Answer:
    """Classify an HTTP answer of ``POST /v0.1/messages``."""
    if 200 <= status < 300:
        uuid_value = body.get("message_uuid") if isinstance(body, dict) else None
        if isinstance(uuid_value, str) and uuid_value:
            return Submitted(uuid_value)
        # Accepted but unusable: retrying could send it twice, so it fails.
        return Refused(status, None, "provider accepted the message without a message_uuid")
    if status == 429 or status >= 500:
        return Transient(f"provider answered HTTP {status}", status)
    code, reason = _error_of(body)
    return Refused(status, code, reason or f"provider refused the message (HTTP {status})")


def _error_of(body: Any) -> tuple[int | None, str]:
    """The error code and reason from a Messages API problem body."""
    if not isinstance(body, dict):
        return None, ""
    code: int | None = None
    raw_code = body.get("code")
    if isinstance(raw_code, int):
        code = raw_code
    else:
        # The Messages API names the code in the ``type`` URL's fragment.
        fragment = str(body.get("type", "")).rpartition("#")[2]
        if fragment.isdigit():
            code = int(fragment)
    parts = [str(body[k]) for k in ("title", "detail") if body.get(k)]
    return code, ": ".join(parts)


# Deterministic ids: a re-emitted outcome (after a redelivery) is the same event.
def submitted_event(command: SendMessage, message_uuid: str) -> MessageSubmitted:
    return MessageSubmitted(
        event_id=deterministic_id(command.dispatch_uuid, command.step, "submitted"),
        dispatch_uuid=command.dispatch_uuid,
        step=command.step,
        command_id=command.event_id,
        message_uuid=message_uuid,
    )


def failed_event(
    command: SendMessage, reason: str, *, code: int | None = None, http_status: int | None = None
) -> MessageSendFailed:
    return MessageSendFailed(
        event_id=deterministic_id(command.dispatch_uuid, command.step, "send-failed"),
        dispatch_uuid=command.dispatch_uuid,
        step=command.step,
        command_id=command.event_id,
        error=ErrorDetail(code=code, reason=reason),
        http_status=http_status,
    )


def unknown_event(
    command: SendMessage, reason: str, attempted_at: datetime
) -> MessageOutcomeUnknown:
    return MessageOutcomeUnknown(
        event_id=deterministic_id(command.dispatch_uuid, command.step, "outcome-unknown"),
        dispatch_uuid=command.dispatch_uuid,
        step=command.step,
        command_id=command.event_id,
        attempted_at=attempted_at,
        reason=reason,
    )


def outcome_event(
    command: SendMessage, answer: Submitted | Refused | Unknown, attempted_at: datetime
) -> MessageSubmitted | MessageSendFailed | MessageOutcomeUnknown:
    if isinstance(answer, Submitted):
        return submitted_event(command, answer.message_uuid)
    if isinstance(answer, Unknown):
        return unknown_event(command, answer.reason, attempted_at)
    return failed_event(command, answer.reason, code=answer.code, http_status=answer.http_status)


def backoff_delays(initial_s: float, max_s: float) -> list[float]:
    """Doubling delays from ``initial_s`` capped at ``max_s`` (one cycle; the
    caller repeats the last one until its budget runs out)."""
    delays = [initial_s]
    while delays[-1] < max_s:
        delays.append(min(delays[-1] * 2, max_s))
    return delays
