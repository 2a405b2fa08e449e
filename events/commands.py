"""Commands: requests to the sender (``dispatch.send``) and the webhook
deliverer (``dispatch.webhooks``). Their ``event_id`` is deterministic (see
:func:`events.base.deterministic_id`), so a redelivered command is recognised."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from events.base import Message
from events.dispatch import WebhookKind


class SendMessage(Message):
    """Send step ``step`` of a dispatch through the Messages API.

    ``event_id`` is the command id; the sender passes it to the provider as
    ``client_ref`` and never sends the same command id twice.
    """

    type: Literal["SendMessage"] = "SendMessage"
    dispatch_uuid: uuid.UUID
    application_id: str
    step: int
    # The workflow item without ``failover``: a Messages API v0.1 message.
    message: dict[str, Any]


class DeliverWebhook(Message):
    """POST ``payload`` to the application's status or final-report URL.

    ``event_id`` is the webhook id: stable across retries and redeliveries so
    receivers can drop duplicates.
    """

    type: Literal["DeliverWebhook"] = "DeliverWebhook"
    dispatch_uuid: uuid.UUID
    application_id: str
    kind: WebhookKind
    payload: dict[str, Any]
    # Set by ``dispatch webhooks redeliver``: deliver again even though this
    # webhook id was already delivered or abandoned.
    redeliver: bool = False
