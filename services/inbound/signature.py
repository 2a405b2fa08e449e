"""Signed status callbacks: ``Authorization: Bearer <JWT HS256>`` with a
``payload_hash`` claim (SHA-256 hex of the body), the scheme the Messages API
uses for signed webhooks. The simulator signs with it, the endpoint verifies."""

from __future__ import annotations

import hashlib
import time
import uuid

import jwt

# Clock skew tolerated between the provider and us (a token "issued" this far
# in the future is still accepted).
CLOCK_SKEW_S = 30
# A callback signed longer ago than this is refused as stale (a replay).
DEFAULT_MAX_AGE_S = 300.0


class InvalidSignature(Exception):
    """The callback's signature is missing, malformed, or does not match its body."""


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign(body: bytes, secret: str, *, now: float | None = None) -> str:
    """The Authorization header value for ``body``."""
    issued = int(time.time() if now is None else now)
    claims = {"iat": issued, "jti": str(uuid.uuid4()), "payload_hash": payload_hash(body)}
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


def verify(
    authorization: str | None,
    body: bytes,
    secret: str,
    *,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    now: float | None = None,
) -> None:
    """Raise :class:`InvalidSignature` unless ``authorization`` signs ``body``
    and was issued within the last ``max_age_s`` seconds."""
    if not secret:  # nothing can verify: fail closed
        raise InvalidSignature("status callbacks cannot be verified here")
    if not authorization:
        raise InvalidSignature("missing Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidSignature("expected Authorization: Bearer <JWT>")
    try:
        # algorithms pinned: "none" and asymmetric algorithms are refused.
        claims = jwt.decode(
            token.strip(),
            secret,
            algorithms=["HS256"],
            options={"require": ["iat", "payload_hash"], "verify_iat": False},
            leeway=CLOCK_SKEW_S,
        )
    except jwt.PyJWTError as exc:
        raise InvalidSignature(f"invalid token: {exc}") from exc
    now = time.time() if now is None else now
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise InvalidSignature("token iat is not a number")
    if iat > now + CLOCK_SKEW_S:
        raise InvalidSignature("token issued in the future")
    if iat < now - max_age_s:
        raise InvalidSignature(f"token is stale: issued more than {max_age_s:g} s ago")
    if claims.get("payload_hash") != payload_hash(body):
        raise InvalidSignature("payload_hash does not match the body")
