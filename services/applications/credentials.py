"""Application credentials: generation, and the salted hash of the API secret.

API secrets are 32 random bytes from :mod:`secrets`, not passwords a person
chose, so a dictionary or brute-force attack on a leaked hash is hopeless
whatever the hash's cost. A fast salted HMAC-SHA-256 is therefore adequate,
and it keeps Basic authentication to about a microsecond per request, which the
gateway's throughput target needs (a memory-hard password hash would cost
tens of milliseconds per request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

_SALT_BYTES = 16


def hash_secret(secret: str, salt: str | None = None) -> str:
    """``salt$hexdigest`` of HMAC-SHA-256(key=salt, secret)."""
    salt = salt if salt is not None else secrets.token_hex(_SALT_BYTES)
    digest = hmac.new(salt.encode(), secret.encode(), hashlib.sha256).hexdigest()
    return f"{salt}${digest}"


def verify_secret(secret: str, stored: str) -> bool:
    """Constant-time check of ``secret`` against a ``salt$hexdigest``."""
    salt, sep, _ = stored.partition("$")
    if not sep:
        return False
    return hmac.compare_digest(hash_secret(secret, salt).encode(), stored.encode())


@dataclass(frozen=True)
class NewCredentials:
    application_id: str
    api_key: str
    api_secret: str
    signature_secret: str


def generate_credentials() -> NewCredentials:
    return NewCredentials(
        application_id=str(uuid.uuid4()),
        api_key=secrets.token_hex(8),
        api_secret=secrets.token_urlsafe(32),
        signature_secret=secrets.token_urlsafe(32),
    )
