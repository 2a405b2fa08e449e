"""Signed status callbacks: ``Authorization: Bearer <JWT HS256>`` with a
``payload_hash`` claim (SHA-256 hex of the body), the scheme the Messages API
uses for signed webhooks. The simulator signs with it, the endpoint verifies."""

from __future__ import annotations

import hashlib
import time
import uuid

import jwt

# Clock skew tolerated between the provider and us.
LEEWAY_S = 300


class InvalidSignature(Exception):
    """The callback's signature is missing, malformed, or does not match its body."""


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign(body: bytes, secret: str, *, now: float | None = None) -> str:
    """The Authorization header value for ``body``."""
    issued = int(time.time() if now is None else now)
    claims = {"iat": issued, "jti": str(uuid.uuid4()), "payload_hash": payload_hash(body)}
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


def verify(authorization: str | None, body: bytes, secret: str) -> None:
    """Raise :class:`InvalidSignature` unless ``authorization`` signs ``body``."""
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
            options={"require": ["iat", "payload_hash"]},
            leeway=LEEWAY_S,
        )
    except jwt.PyJWTError as exc:
        raise InvalidSignature(f"invalid token: {exc}") from exc
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > time.time() + LEEWAY_S:
        raise InvalidSignature("token issued in the future")
    if claims.get("payload_hash") != payload_hash(body):
        raise InvalidSignature("payload_hash does not match the body")
