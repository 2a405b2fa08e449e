"""Events of ``dispatch.events``: the log of record, keyed by ``dispatch_uuid``.

Every fact about a dispatch is one of these. The processor's state is a fold of
them, the projector's read models too, and replaying them from offset 0
reproduces every decision.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from events.base import Message

# The channels a workflow item may use: the one definition for the codebase
# (the gateway's request models and rules, the processor, the read side).
Channel = Literal["sms", "mms", "whatsapp", "viber_service_msg", "messenger"]
MessageStatus = Literal["submitted", "delivered", "read", "rejected", "undeliverable"]
WebhookKind = Literal["status", "final"]
FinalStatus = Literal["completed", "error"]


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = "EUR"
    price: str


class ErrorDetail(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: int | None = None
    reason: str


class DispatchEvent(Message):
    dispatch_uuid: uuid.UUID


class WorkflowRequested(DispatchEvent):
    """A client's dispatch, accepted by the gateway (202 only after this is acked)."""

    type: Literal["WorkflowRequested"] = "WorkflowRequested"
    application_id: str
    template: Literal["failover"] = "failover"
    # The validated workflow items, exactly as the client sent them (Messages
    # API v0.1 objects, each with ``failover`` except the last).
    workflow: list[dict[str, Any]]
    idempotency_key: str | None = None
    # SHA-256 of the canonical request body when an Idempotency-Key was sent:
    # two events with one dispatch_uuid but different hashes are different
    # requests that reused a key (only the first counts).
    request_hash: str | None = None


class StepStarted(DispatchEvent):
    """The processor decided to send step ``step`` (0-based) of the workflow."""

    type: Literal["StepStarted"] = "StepStarted"
    # 2: ``deadline_at`` always present (events/upcasts.py upgrades version 1).
    schema_version: Literal[2] = 2  # type: ignore[assignment]
    step: int
    channel: Channel
    command_id: uuid.UUID
    # The step's guard: it ends by this time (the last-step limit from its
    # start) unless a submission arms its real deadline. Carried here rather
    # than in a TimerScheduled of its own: one event fewer per step started.
    deadline_at: AwareDatetime


class MessageSubmitted(DispatchEvent):
    """The provider accepted the step's message (2xx with a message_uuid)."""

    type: Literal["MessageSubmitted"] = "MessageSubmitted"
    step: int
    command_id: uuid.UUID
    message_uuid: str


class MessageSendFailed(DispatchEvent):
    """The provider refused the message, or stayed unreachable past the retry budget."""

    type: Literal["MessageSendFailed"] = "MessageSendFailed"
    step: int
    command_id: uuid.UUID
    error: ErrorDetail
    http_status: int | None = None


class MessageOutcomeUnknown(DispatchEvent):
    """The provider may or may not have accepted the message: the call was sent
    and then timed out or was cut, or a sender died during it. Never sent again
    (that could send it twice): the step waits as if submitted at
    ``attempted_at``, and a status callback naming its ``client_ref`` tells
    which message it became; without one, the step's deadline decides."""

    type: Literal["MessageOutcomeUnknown"] = "MessageOutcomeUnknown"
    step: int
    command_id: uuid.UUID
    attempted_at: AwareDatetime
    reason: str


class MessageStatusReceived(DispatchEvent):
    """A Messages API status callback for one of this dispatch's messages."""

    model_config = ConfigDict(populate_by_name=True)

    type: Literal["MessageStatusReceived"] = "MessageStatusReceived"
    message_uuid: str
    step: int | None = None
    status: MessageStatus
    timestamp: AwareDatetime
    to: dict[str, Any] = Field(default_factory=dict)
    from_: dict[str, Any] = Field(default_factory=dict, alias="from")
    error: ErrorDetail | None = None
    usage: Usage | None = None


class TimerScheduled(DispatchEvent):
    """The processor armed a deadline for a step (expiry, or the last-step limit).

    Recording the deadline as an event keeps replays independent of the
    configuration that was in force when the decision was made.
    """

    type: Literal["TimerScheduled"] = "TimerScheduled"
    # 2: a guard recorded on its own is ``start_guard`` (events/upcasts.py).
    schema_version: Literal[2] = 2  # type: ignore[assignment]
    step: int
    deadline_at: AwareDatetime
    # ``final_step_limit``: a last step's limit from its submission (what the
    # processor decides today). Older logs also hold ``expiry`` (a non-last
    # step's deadline, which the fold now arms from the submission itself) and
    # ``start_guard`` (a step's guard, which StepStarted now carries).
    reason: Literal["expiry", "final_step_limit", "start_guard"]


class StepTimedOut(DispatchEvent):
    type: Literal["StepTimedOut"] = "StepTimedOut"
    step: int
    deadline_at: AwareDatetime
    tick_at: AwareDatetime


class WorkflowCompleted(DispatchEvent):
    type: Literal["WorkflowCompleted"] = "WorkflowCompleted"
    step: int
    message_uuid: str | None = None


class WorkflowFailed(DispatchEvent):
    type: Literal["WorkflowFailed"] = "WorkflowFailed"
    step: int
    reason: str


class UsageAmended(DispatchEvent):
    """A price arrived after the final report; the true total is ``total``."""

    type: Literal["UsageAmended"] = "UsageAmended"
    message_uuid: str
    usage: Usage
    total: Usage


class WebhookDelivered(DispatchEvent):
    type: Literal["WebhookDelivered"] = "WebhookDelivered"
    webhook_id: uuid.UUID
    kind: WebhookKind
    attempts: int
    http_status: int


class WebhookAbandoned(DispatchEvent):
    type: Literal["WebhookAbandoned"] = "WebhookAbandoned"
    webhook_id: uuid.UUID
    kind: WebhookKind
    attempts: int
    reason: str
    http_status: int | None = None


class WebhookAttemptFailed(DispatchEvent):
    """One attempt at a webhook failed and another is scheduled.

    Recorded for the first attempts of a round and then only for attempts
    whose number is a power of two (see ``services/webhooks/attempts.py``): a
    receiver down for a day costs a few events per webhook, not one per
    attempt. The attempt that ends the round is told by WebhookDelivered or
    WebhookAbandoned, which say how many attempts there were in all.
    """

    type: Literal["WebhookAttemptFailed"] = "WebhookAttemptFailed"
    webhook_id: uuid.UUID
    kind: WebhookKind
    round: int  # 0: the original delivery; each redelivery is a new round
    attempt: int  # 1-based, within the round
    answer: str  # "HTTP 503", or the error when no answer came
    http_status: int | None = None
    next_attempt_at: AwareDatetime


class Tick(Message):
    """Time itself: appended to every partition about once a second by the ticker.

    Not about one dispatch; it carries the partition it was written to so the
    fold reads that partition's due timers.
    """

    type: Literal["Tick"] = "Tick"
    partition: int
    now: AwareDatetime
