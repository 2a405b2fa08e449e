"""Who is calling: Basic (api_key:api_secret) or Bearer JWT (RS256), never both.

Pure functions of the ``Authorization`` header values and a lookup of
applications, so the whole matrix is testable without HTTP or Kafka.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from events.applications import ApplicationRegistered
from services.applications.credentials import hash_secret, verify_secret

CHALLENGE = 'Basic realm="dispatch", Bearer realm="dispatch"'

# Hashed when the api_key is unknown, so an unknown key costs the same time as
# a wrong secret and response timing does not reveal which keys exist.
_DUMMY_HASH = hash_secret("not-a-secret", "0" * 32)


class Applications(Protocol):
    @property
    def loaded(self) -> bool:
        """False until the registry has caught up with the applications topic."""
        ...

    def get(self, application_id: str) -> ApplicationRegistered | None: ...

    def by_api_key(self, api_key: str) -> ApplicationRegistered | None: ...


class AuthError(Exception):
    """Missing or wrong credentials; the message is safe to show the client."""


class RegistryLoading(Exception):
    """The registry has not caught up yet, so the credentials cannot be judged:
    answering 401 now would tell a valid caller its credentials are wrong."""


@dataclass(frozen=True)
class Authenticated:
    application: ApplicationRegistered
    scheme: str


def authenticate(headers: Sequence[str], applications: Applications) -> Authenticated:
    """The application behind the ``Authorization`` header values, or AuthError
    (RegistryLoading while the registry is still catching up)."""
    if not applications.loaded:
        raise RegistryLoading()
    if not headers:
        raise AuthError("Authorization header missing: use Basic or Bearer (JWT)")
    if len(headers) > 1 or _mixes_schemes(headers[0]):
        raise AuthError("use either Basic or Bearer authentication, not both")
    scheme, _, credentials = headers[0].strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        return Authenticated(_basic(credentials.strip(), applications), "basic")
    if scheme == "bearer":
        return Authenticated(_bearer(credentials.strip(), applications), "bearer")
    raise AuthError("unsupported authorization scheme: use Basic or Bearer")


def _mixes_schemes(value: str) -> bool:
    lowered = value.lower()
    return "basic " in lowered and "bearer " in lowered


def _basic(credentials: str, applications: Applications) -> ApplicationRegistered:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthError("Basic credentials are not base64 of api_key:api_secret") from exc
    api_key, sep, api_secret = decoded.partition(":")
    if not sep:
        raise AuthError("Basic credentials are not base64 of api_key:api_secret")
    app = applications.by_api_key(api_key)
    stored = app.api_secret_hash if app is not None else _DUMMY_HASH
    if not verify_secret(api_secret, stored) or app is None:
        raise AuthError("invalid api_key or api_secret")
    return app


@lru_cache(maxsize=1024)
def _public_key(pem: str) -> RSAPublicKey | None:
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        return None
    return key if isinstance(key, RSAPublicKey) else None


def _bearer(token: str, applications: Applications) -> ApplicationRegistered:
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise AuthError("Bearer token is not a JWT") from exc
    application_id = unverified.get("application_id")
    if not isinstance(application_id, str):
        raise AuthError("JWT lacks the application_id claim")
    app = applications.get(application_id)
    key = _public_key(app.public_key_pem) if app and app.public_key_pem else None
    if app is None or key is None:
        raise AuthError("JWT does not verify: unknown application or no public key registered")
    try:
        # Only RS256: refuses ``alg: none`` and an HS256 token "signed" with
        # the public key as an HMAC secret.
        jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            options={"require": ["exp", "application_id"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("JWT expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(f"JWT does not verify: {exc}") from exc
    return app
