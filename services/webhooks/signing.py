"""Signs webhook bodies: ``Authorization: Bearer <JWT HS256>`` with the
application's signature secret and a ``payload_hash`` claim binding the token to
the exact bytes sent (services/payload_signature.py), plus the headers every
webhook carries."""

from __future__ import annotations

import uuid

from services import payload_signature

USER_AGENT = "Dispatch-Webhooks/0.1"
WEBHOOK_ID_HEADER = "X-Dispatch-Webhook-Id"
ATTEMPT_HEADER = "X-Dispatch-Webhook-Attempt"


def sign(body: bytes, *, secret: str, application_id: str, now: float) -> str:
    """The Authorization header value. ``jti`` is fresh per attempt, so a receiver
    can refuse a replayed token while deduping deliveries on the webhook id."""
    return payload_signature.sign(body, secret, now=now, claims={"application_id": application_id})


def headers(
    body: bytes,
    *,
    secret: str,
    application_id: str,
    webhook_id: uuid.UUID,
    attempt: int,
    now: float,
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Authorization": sign(body, secret=secret, application_id=application_id, now=now),
        WEBHOOK_ID_HEADER: str(webhook_id),
        ATTEMPT_HEADER: str(attempt),
        "User-Agent": USER_AGENT,
    }
