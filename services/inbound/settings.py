"""How status callbacks are authenticated, from the environment.

Signed callbacks are the default and the only mode fit for a deployment: the
gateway refuses to start without ``INBOUND_SIGNATURE_SECRET`` unless
``INBOUND_ALLOW_UNSIGNED_CALLBACKS=1`` says, explicitly, that anyone who can
reach ``/v0.1/status`` may report statuses (local development only).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.secret_env import env_secret

SECRET_VARIABLE = "INBOUND_SIGNATURE_SECRET"
ALLOW_UNSIGNED_VARIABLE = "INBOUND_ALLOW_UNSIGNED_CALLBACKS"
DEFAULT_MAX_AGE_S = 300.0
# HS256 keys shorter than the hash are guessable offline from one signed
# callback (RFC 7518 section 3.2).
MIN_SECRET_BYTES = 32


class CallbackAuthMissing(Exception):
    """No secret and no explicit permission to accept unsigned callbacks."""


@dataclass(frozen=True)
class CallbackAuth:
    signature_secret: str = ""
    allow_unsigned: bool = False
    # A signed callback older than this (by its ``iat``) is refused as stale.
    max_age_s: float = DEFAULT_MAX_AGE_S

    @classmethod
    def from_env(cls) -> CallbackAuth:
        auth = cls(
            signature_secret=env_secret(SECRET_VARIABLE),
            allow_unsigned=os.environ.get(ALLOW_UNSIGNED_VARIABLE, "") == "1",
            max_age_s=float(os.environ.get("INBOUND_SIGNATURE_MAX_AGE_S", DEFAULT_MAX_AGE_S)),
        )
        if not auth.signature_secret and not auth.allow_unsigned:
            raise CallbackAuthMissing(
                f"{SECRET_VARIABLE} (or {SECRET_VARIABLE}_FILE) is not set: status callbacks "
                f"cannot be authenticated. Set it to the secret the provider signs with, or "
                f"set {ALLOW_UNSIGNED_VARIABLE}=1 to accept unsigned callbacks "
                f"(local development only: anyone could then complete any dispatch)."
            )
        if auth.signature_secret and len(auth.signature_secret.encode()) < MIN_SECRET_BYTES:
            raise CallbackAuthMissing(
                f"{SECRET_VARIABLE} is shorter than {MIN_SECRET_BYTES} bytes; use a random one, "
                f"e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return auth
