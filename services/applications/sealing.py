"""Secrets that must be kept in clear (an application's webhook signature
secret: the deliverer signs with it) are stored sealed on
``dispatch.applications``: AES-256-GCM under a key from configuration, tagged
with the key's id so keys can be rotated.

``DISPATCH_SECRETS_KEYS`` (or ``DISPATCH_SECRETS_KEYS_FILE``) lists
``id=key`` pairs, comma-separated, each key 32 bytes in URL-safe base64
(``dispatch secrets generate`` writes one; a bare key has the id
``default``); the first seals, all open. A
sealed value reads ``sealed:v1:<key id>:<base64 nonce+ciphertext>``.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.secret_env import env_secret

KEYS_VARIABLE = "DISPATCH_SECRETS_KEYS"
PREFIX = "sealed:v1:"
_NONCE_BYTES = 12


class SealingError(Exception):
    """A key is missing or malformed, or a sealed value does not open; the
    message never holds a secret."""


def _decode_key(key_id: str, encoded: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SealingError(f"key {key_id!r} is not URL-safe base64") from exc
    if len(key) != 32:
        raise SealingError(f"key {key_id!r} is {len(key)} bytes, not 32")
    return key


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


@dataclass(frozen=True)
class SecretKeys:
    active_id: str
    keys: dict[str, bytes] = field(repr=False)

    @classmethod
    def parse(cls, spec: str) -> SecretKeys:
        keys: dict[str, bytes] = {}
        for entry in (e.strip() for e in spec.split(",")):
            if not entry:
                continue
            key_id, sep, encoded = entry.partition("=")
            if not sep:
                key_id, encoded = "default", entry
            if not key_id or ":" in key_id:
                raise SealingError(f"{KEYS_VARIABLE} entries are id=base64key, got a bad id")
            keys[key_id] = _decode_key(key_id, encoded.strip())
        if not keys:
            raise SealingError(f"{KEYS_VARIABLE} holds no key")
        return cls(active_id=next(iter(keys)), keys=keys)

    @classmethod
    def from_env(cls) -> SecretKeys | None:
        spec = env_secret(KEYS_VARIABLE)
        return cls.parse(spec) if spec else None

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        # The key id is authenticated too: a value cannot be relabelled.
        sealed = AESGCM(self.keys[self.active_id]).encrypt(
            nonce, plaintext.encode(), self.active_id.encode()
        )
        return f"{PREFIX}{self.active_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str) -> str:
        """The plaintext of a sealed value (a value never sealed is returned as is)."""
        if not is_sealed(value):
            return value
        key_id, _, encoded = value.removeprefix(PREFIX).partition(":")
        key = self.keys.get(key_id)
        if key is None:
            raise SealingError(f"sealed with key {key_id!r}, which is not configured")
        try:
            raw = base64.urlsafe_b64decode(encoded)
            plain = AESGCM(key).decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], key_id.encode())
        except (binascii.Error, ValueError, InvalidTag) as exc:
            raise SealingError(f"a value sealed with key {key_id!r} does not open") from exc
        return plain.decode()

    def needs_resealing(self, value: str) -> bool:
        return not value.startswith(f"{PREFIX}{self.active_id}:")
