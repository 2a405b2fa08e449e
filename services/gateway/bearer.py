"""Bearer JWTs as Vonage's own clients make them (RS256, signed with the
application's private key).

Vonage's contract: ``exp`` may be missing and then means ``iat`` + 15 minutes
(the Dispatch-era SDKs sign only ``iat``, ``jti`` and ``application_id``); a
token lives at most 24 hours. Clocks differ a little between client and
server, hence a small leeway on every time comparison.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from events.applications import ApplicationRegistered

DEFAULT_LIFETIME_S = 15 * 60
MAX_LIFETIME_S = 24 * 60 * 60
DEFAULT_LEEWAY_S = 30.0

# Verified against when the application is unknown, so an unknown
# application_id costs the same RSA work as a bad signature and timing does
# not reveal which applications exist. Made at import, not on first use, so
# not even the first probe is cheaper.
_DECOY_KEY: RSAPublicKey = rsa.generate_private_key(
    public_exponent=65537, key_size=2048
).public_key()

_DOES_NOT_VERIFY = "JWT does not verify: unknown application or bad signature"


class BearerRefused(Exception):
    """The token is not acceptable; the message is safe to show the client."""


@lru_cache(maxsize=1024)
def _public_key(pem: str) -> RSAPublicKey | None:
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        return None
    return key if isinstance(key, RSAPublicKey) else None


def lookup_application_id(token: str) -> str:
    """The (not yet verified) application_id claim: which key to verify with."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise BearerRefused("Bearer token is not a JWT") from exc
    application_id = unverified.get("application_id")
    if not isinstance(application_id, str):
        raise BearerRefused("JWT lacks the application_id claim")
    return application_id


def verify_bearer(
    token: str,
    application: ApplicationRegistered | None,
    *,
    leeway_s: float = DEFAULT_LEEWAY_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The token's verified claims, or BearerRefused."""
    key = None
    if application is not None and application.public_key_pem:
        key = _public_key(application.public_key_pem)
    try:
        # Only RS256: refuses ``alg: none`` and an HS256 token "signed" with
        # the public key as an HMAC secret. Times are checked below, with
        # Vonage's defaults.
        claims: dict[str, Any] = jwt.decode(
            token,
            key or _DECOY_KEY,
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
            },
        )
    except jwt.PyJWTError as exc:
        raise BearerRefused(_DOES_NOT_VERIFY) from exc
    if key is None:  # cannot verify with the decoy, but never trust it
        raise BearerRefused(_DOES_NOT_VERIFY)
    check_lifetime(claims, time.time() if now is None else now, leeway_s)
    return claims


def _seconds(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BearerRefused(f"JWT {name} must be a number of seconds since the epoch")
    return float(value)


def check_lifetime(claims: dict[str, Any], now: float, leeway_s: float) -> None:
    iat, exp, nbf = (_seconds(claims, n) for n in ("iat", "exp", "nbf"))
    if iat is None and exp is None:
        raise BearerRefused("JWT needs an exp or an iat claim")
    if iat is not None and iat > now + leeway_s:
        raise BearerRefused("JWT iat is in the future")
    if nbf is not None and nbf > now + leeway_s:
        raise BearerRefused("JWT is not valid yet (nbf)")
    if exp is None:
        assert iat is not None
        exp = iat + DEFAULT_LIFETIME_S
    issued = iat if iat is not None else now
    if exp - issued > MAX_LIFETIME_S + (0 if iat is not None else leeway_s):
        raise BearerRefused("JWT lives longer than 24 hours (exp - iat)")
    if now > exp + leeway_s:
        raise BearerRefused("JWT expired")
