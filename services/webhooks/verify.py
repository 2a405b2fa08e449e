"""For receivers: check that a webhook came from Dispatch and was not altered.

    from services.webhooks.verify import verify_webhook, InvalidWebhook

    try:
        claims = verify_webhook(request_body, request.headers["Authorization"], secret)
    except InvalidWebhook:
        return 401

Only ``pyjwt`` is needed; the function is self-contained so it can be copied.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import jwt


class InvalidWebhook(ValueError):
    """The token is missing, malformed, badly signed, too old, or for other bytes."""


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
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise InvalidWebhook("Authorization is not a Bearer token")
    try:
        # algorithms pinned: never accept "none" or an RS/HS confusion.
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["iat", "jti", "application_id", "payload_hash"]},
            # iat in the future is judged below, with the same window.
            leeway=max_age_s,
        )
    except jwt.PyJWTError as exc:
        raise InvalidWebhook(f"bad token: {exc}") from exc
    current = time.time() if now is None else now
    iat = claims["iat"]
    if not isinstance(iat, int | float) or abs(current - iat) > max_age_s:
        raise InvalidWebhook("token too old (or from the future)")
    expected = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(str(claims["payload_hash"]), expected):
        raise InvalidWebhook("payload_hash does not match the body")
    return claims
