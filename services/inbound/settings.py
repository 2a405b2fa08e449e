"""The inbound endpoint's settings, from the environment of the process that
hosts it (the gateway): how status callbacks are authenticated, how long a
lookup waits for the read side, and the endpoint's rate limit.

Signed callbacks are the default and the only mode fit for a deployment: the
gateway refuses to start without ``INBOUND_SIGNATURE_SECRET`` unless
``INBOUND_ALLOW_UNSIGNED_CALLBACKS=1`` says, explicitly, that anyone who can
reach ``/v0.1/status`` may report statuses (local development only).
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BeforeValidator, Field, model_validator

from services.settings import EnvironmentSettings, secret

SECRET_VARIABLE = "INBOUND_SIGNATURE_SECRET"
ALLOW_UNSIGNED_VARIABLE = "INBOUND_ALLOW_UNSIGNED_CALLBACKS"
DEFAULT_MAX_AGE_S = 300.0
DEFAULT_RATE_PER_S = 2000.0
# HS256 keys shorter than the hash are guessable offline from one signed
# callback (RFC 7518 section 3.2).
MIN_SECRET_BYTES = 32


def _exactly_one(value: object) -> object:
    # Only "1" allows unsigned callbacks: a stray "0", "false" or "" must not.
    return value == "1" if isinstance(value, str) else value


class InboundSettings(EnvironmentSettings):
    signature_secret: str = secret(SECRET_VARIABLE)
    allow_unsigned: Annotated[bool, BeforeValidator(_exactly_one)] = Field(
        False, validation_alias=ALLOW_UNSIGNED_VARIABLE
    )
    # A signed callback older than this (by its ``iat``) is refused as stale.
    max_age_s: float = Field(
        DEFAULT_MAX_AGE_S, gt=0, validation_alias="INBOUND_SIGNATURE_MAX_AGE_S"
    )
    # How long a callback waits for the read side to know its message.
    lookup_wait_s: float = Field(2.0, ge=0, validation_alias="INBOUND_LOOKUP_WAIT_S")
    rate_limit_per_s: float = Field(
        DEFAULT_RATE_PER_S, ge=0, validation_alias="INBOUND_RATE_LIMIT_PER_S"
    )
    # Default: two seconds' worth of the rate.
    rate_limit_burst: int | None = Field(None, ge=0, validation_alias="INBOUND_RATE_LIMIT_BURST")

    @property
    def burst(self) -> int:
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return int(self.rate_limit_per_s * 2)

    @model_validator(mode="after")
    def _callbacks_can_be_authenticated(self) -> Self:
        if not self.signature_secret and not self.allow_unsigned:
            raise ValueError(
                f"{SECRET_VARIABLE} (or {SECRET_VARIABLE}_FILE) is not set: status callbacks "
                f"cannot be authenticated. Set it to the secret the provider signs with, or "
                f"set {ALLOW_UNSIGNED_VARIABLE}=1 to accept unsigned callbacks "
                f"(local development only: anyone could then complete any dispatch)."
            )
        if self.signature_secret and len(self.signature_secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"{SECRET_VARIABLE} is shorter than {MIN_SECRET_BYTES} bytes; use a random one, "
                f"e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self
