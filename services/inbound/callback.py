"""The shape of a Messages API status callback, as the endpoint accepts it."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from events.base import deterministic_id
from events.dispatch import ErrorDetail, MessageStatusReceived, Usage
from services.inbound.lookup import MessageRef


class StatusCallback(BaseModel):
    # Providers add fields over time (channel, _links, ...): ignore what we do not use.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    message_uuid: str = Field(min_length=1, max_length=100)
    to: dict[str, Any]
    from_: dict[str, Any] = Field(alias="from")
    timestamp: AwareDatetime
    status: Literal["submitted", "delivered", "read", "rejected", "undeliverable"]
    error: ErrorDetail | None = None
    usage: Usage | None = None
    client_ref: str | None = None


def invalid_parameters(exc: ValidationError) -> list[dict[str, str]]:
    """``{name, reason}`` per bad field, for a problem+json body."""
    params = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"]) or "body"
        params.append({"name": name, "reason": error["msg"]})
    return params


def status_event(callback: StatusCallback, ref: MessageRef) -> MessageStatusReceived:
    """The event for one callback. Its id depends only on what the provider
    said, so a callback posted twice yields the same event id twice."""
    return MessageStatusReceived(
        event_id=event_id_for(callback),
        dispatch_uuid=ref.dispatch_uuid,
        message_uuid=callback.message_uuid,
        step=ref.step,
        status=callback.status,
        timestamp=callback.timestamp,
        to=callback.to,
        from_=callback.from_,
        error=callback.error,
        usage=callback.usage,
    )


def event_id_for(callback: StatusCallback) -> uuid.UUID:
    # The price is part of a callback's identity (see services.failover.factories.status_key).
    price = callback.usage.price if callback.usage is not None else ""
    return deterministic_id(
        callback.message_uuid, callback.status, callback.timestamp.isoformat(), price
    )
