"""Who is calling: Basic (api_key:api_secret) or Bearer JWT (RS256, see
:mod:`services.gateway.bearer`), never both.

Functions of the ``Authorization`` header values and a lookup of
applications (plus a memo of Basic credentials already verified), so the
whole matrix is testable without HTTP or Kafka.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from events.applications import ApplicationRegistered
from services.applications.credentials import hash_secret, verify_secret
from services.gateway.bearer import (
    DEFAULT_LEEWAY_S,
    BearerRefused,
    lookup_application_id,
    verify_bearer,
)

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


def authenticate(
    headers: Sequence[str], applications: Applications, *, jwt_leeway_s: float = DEFAULT_LEEWAY_S
) -> Authenticated:
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
        return Authenticated(_bearer(credentials.strip(), applications, jwt_leeway_s), "bearer")
    raise AuthError("unsupported authorization scheme: use Basic or Bearer")


def _mixes_schemes(value: str) -> bool:
    lowered = value.lower()
    return "basic " in lowered and "bearer " in lowered


class _VerifiedBasic:
    """Basic credentials already verified, by the SHA-256 of the header's
    credentials (never the credentials themselves): the salted HMAC, most of
    a Basic check's cost, is paid once per credential instead of per request.
    A hit counts only while the registry holds the same key with the same
    secret hash, so a rotated secret or a removed application is refused at
    once. Bounded: emptied when full."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._max_entries = max_entries
        self._entries: dict[bytes, tuple[str, str]] = {}  # digest → (api_key, secret hash)

    def get(self, digest: bytes, applications: Applications) -> ApplicationRegistered | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        app = applications.by_api_key(entry[0])
        if app is None or app.api_secret_hash != entry[1]:
            del self._entries[digest]
            return None
        return app

    def put(self, digest: bytes, app: ApplicationRegistered) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[digest] = (app.api_key, app.api_secret_hash)


_verified_basic = _VerifiedBasic()


def _basic(credentials: str, applications: Applications) -> ApplicationRegistered:
    digest = hashlib.sha256(credentials.encode()).digest()
    known = _verified_basic.get(digest, applications)
    if known is not None:
        return known
    app = _verify_basic(credentials, applications)
    _verified_basic.put(digest, app)
    return app


def _verify_basic(credentials: str, applications: Applications) -> ApplicationRegistered:
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


def _bearer(token: str, applications: Applications, leeway_s: float) -> ApplicationRegistered:
    app = applications.get(_application_id(token))
    try:
        verify_bearer(token, app, leeway_s=leeway_s)
    except BearerRefused as exc:
        raise AuthError(str(exc)) from exc
    assert app is not None  # verify_bearer refuses an unknown application
    return app


def _application_id(token: str) -> str:
    try:
        return lookup_application_id(token)
    except BearerRefused as exc:
        raise AuthError(str(exc)) from exc
