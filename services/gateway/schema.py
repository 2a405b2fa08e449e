"""The request body of ``POST /v0.1/dispatch``: pydantic models that mirror the
seed field by field.

These models settle *shape*: field names, JSON types and enumerations. Rules
that tie fields together (which channel takes which message type, text
limits, attachment extensions, failover on all but the last message) live in
:mod:`services.gateway.rules`, so every broken rule is reported, not only the
first. Models are strict (no ``"15"`` for ``15``) and refuse unknown fields,
so the workflow stored on the log is exactly what the client sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from events.dispatch import Channel

ContentType = Literal["text", "image", "audio", "video", "file", "template", "custom"]

MAX_WORKFLOW_MESSAGES = 10
"""Upper bound on messages per dispatch (the seed sets none). Ten is more than
the five channels the template can fail over across, with room for retries of
one channel."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Endpoint(_Strict):
    """``from`` or ``to``: a channel and an address (``number`` or ``id``)."""

    type: Channel
    number: str | None = None
    id: str | None = None


class Attachment(_Strict):
    url: str
    caption: str | None = None


class MediaUrl(_Strict):
    url: str


class Template(_Strict):
    name: str
    # ``{{1}}`` is the first value. Each is a string or ``{"default": "..."}``
    # (the Messages API v0.1 form); :mod:`services.gateway.rules` checks which.
    parameters: list[Any] | None = None


class Content(_Strict):
    type: ContentType
    text: str | None = None
    image: Attachment | None = None
    audio: MediaUrl | None = None
    video: MediaUrl | None = None
    file: Attachment | None = None
    template: Template | None = None
    custom: dict[str, Any] | None = None


class ViberServiceMsg(_Strict):
    category: Literal["transaction", "promotion"] | None = None
    ttl: int | None = None


class MessengerOptions(_Strict):
    category: Literal["response", "update", "message_tag"] | None = None
    tag: str | None = None


class WhatsappOptions(_Strict):
    policy: Literal["fallback", "deterministic"] | None = None
    locale: str | None = None


class MessageBody(_Strict):
    content: Content
    viber_service_msg: ViberServiceMsg | None = None
    messenger: MessengerOptions | None = None
    whatsapp: WhatsappOptions | None = None


class Failover(_Strict):
    expiry_time: int
    condition_status: Literal["delivered", "read"]


class WorkflowItem(_Strict):
    model_config = ConfigDict(populate_by_name=True)

    from_: Endpoint = Field(alias="from")
    to: Endpoint
    message: MessageBody
    failover: Failover | None = None


class DispatchRequest(_Strict):
    template: Literal["failover"]
    workflow: list[WorkflowItem] = Field(min_length=1, max_length=MAX_WORKFLOW_MESSAGES)

    def workflow_as_sent(self) -> list[dict[str, Any]]:
        """The items as the client sent them (aliases kept: ``from`` stays ``from``)."""
        return [
            item.model_dump(mode="json", by_alias=True, exclude_unset=True)
            for item in self.workflow
        ]
