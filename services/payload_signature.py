"""HS256 body signatures, the one implementation: ``Authorization: Bearer
<JWT>`` signed with a shared secret, whose ``payload_hash`` claim (SHA-256 hex
of the body) binds the token to the exact bytes sent.

Used both ways: the webhook deliverer signs what it POSTs (receivers verify
with :func:`services.webhooks.verify.verify_webhook`), and status callbacks
are signed by the provider (the simulator here) and verified by the inbound
endpoint. Self-contained (only ``pyjwt``), so a receiver can copy it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

ALGORITHM = "HS256"


class InvalidPayloadSignature(ValueError):
    """The token is missing, malformed, badly signed, too old, or for other bytes."""


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign(
    body: bytes,
    secret: str,
    *,
    now: float | None = None,
    claims: Mapping[str, Any] | None = None,
) -> str:
    """The ``Authorization`` header value for ``body``. ``jti`` is fresh per
    call, so a receiver can refuse a replayed token; ``claims`` are added."""
    issued = int(time.time() if now is None else now)
    token_claims = {
        "iat": issued,
        "jti": str(uuid.uuid4()),
        **(claims or {}),
        "payload_hash": payload_hash(body),
    }
    return "Bearer " + jwt.encode(token_claims, secret, algorithm=ALGORITHM)


def verify(
    authorization: str | None,
    body: bytes,
    secret: str,
    *,
    max_age_s: float,
    future_skew_s: float,
    required: Iterable[str] = (),
    now: float | None = None,
) -> dict[str, Any]:
    """The token's claims if ``authorization`` signs exactly ``body`` and was
    issued at most ``max_age_s`` ago (and at most ``future_skew_s`` ahead of
    our clock); :class:`InvalidPayloadSignature` otherwise. ``required`` names
    claims that must be present besides ``iat`` and ``payload_hash``."""
    if not secret:  # nothing can verify: fail closed
        raise InvalidPayloadSignature("signatures cannot be verified here (no secret)")
    if not authorization:
        raise InvalidPayloadSignature("missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidPayloadSignature("expected Authorization: Bearer <JWT>")
    try:
        # algorithms pinned: "none" and asymmetric algorithms (RS/HS
        # confusion) are refused. iat is judged below, against both bounds.
        claims: dict[str, Any] = jwt.decode(
            token.strip(),
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["iat", "payload_hash", *required], "verify_iat": False},
            leeway=future_skew_s,
        )
    except jwt.PyJWTError as exc:
        raise InvalidPayloadSignature(f"invalid token: {exc}") from exc
    current = time.time() if now is None else now
    iat = claims["iat"]
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise InvalidPayloadSignature("token iat is not a number")
    if iat > current + future_skew_s:
        raise InvalidPayloadSignature("token issued in the future")
    if iat < current - max_age_s:
        raise InvalidPayloadSignature(f"token is too old: issued more than {max_age_s:g} s ago")
    if not hmac.compare_digest(str(claims["payload_hash"]), payload_hash(body)):
        raise InvalidPayloadSignature("payload_hash does not match the body")
    return claims
