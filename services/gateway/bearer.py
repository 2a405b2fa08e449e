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
# Keys tried for a token without ``kid``; more make every refusal costlier.
MAX_KEYS = 4

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


def _candidate_keys(token: str, application: ApplicationRegistered | None) -> list[RSAPublicKey]:
    """The keys that may have signed ``token``: the one its ``kid`` names, or
    without a ``kid`` (the Vonage SDKs set none) every registered key."""
    try:  # parsed for an unknown application too: the same work either way
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise BearerRefused("Bearer token is not a JWT") from exc
    if application is None:
        return []
    if kid is not None:
        pems = [application.public_keys[kid]] if kid in application.public_keys else []
    else:
        pems = [*application.public_keys.values()]
        if application.public_key_pem:
            pems.append(application.public_key_pem)
    return [k for k in (_public_key(p) for p in pems[:MAX_KEYS]) if k is not None]


def verify_bearer(
    token: str,
    application: ApplicationRegistered | None,
    *,
    leeway_s: float = DEFAULT_LEEWAY_S,
    now: float | None = None,
) -> dict[str, Any]:
    """The token's verified claims, or BearerRefused."""
    keys = _candidate_keys(token, application)
    # An unknown application (no key) still costs one RSA verification.
    for key in keys or [_DECOY_KEY]:
        claims = _signed_claims(token, key)
        if claims is not None and key is not _DECOY_KEY:
            check_lifetime(claims, time.time() if now is None else now, leeway_s)
            return claims
    raise BearerRefused(_DOES_NOT_VERIFY)


def _signed_claims(token: str, key: RSAPublicKey) -> dict[str, Any] | None:
    """The claims if ``key`` signed ``token``; times are checked apart, with
    Vonage's defaults."""
    try:
        # Only RS256: refuses ``alg: none`` and an HS256 token "signed" with
        # the public key as an HMAC secret.
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
            },
        )
    except jwt.PyJWTError:
        return None
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
