"""For receivers: check that a webhook came from Dispatch and was not altered.

    from services.webhooks.verify import verify_webhook, InvalidWebhook

    try:
        claims = verify_webhook(request_body, request.headers["Authorization"], secret)
    except InvalidWebhook:
        return 401

Only ``pyjwt`` is needed: this and ``services/payload_signature.py`` can be
copied together.
"""

from __future__ import annotations

from typing import Any

from services.payload_signature import InvalidPayloadSignature, verify

# What a receiver catches.
InvalidWebhook = InvalidPayloadSignature


def verify_webhook(
    body: bytes,
    authorization: str,
    secret: str,
    max_age_s: float = 300.0,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Return the token's claims if ``body`` is exactly what Dispatch signed.

    ``max_age_s`` bounds how old ``iat`` may be (replay window; also allows that
    much clock skew into the future).
    """
    return verify(
        authorization,
        body,
        secret,
        max_age_s=max_age_s,
        future_skew_s=max_age_s,
        required=("jti", "application_id"),
        now=now,
    )
