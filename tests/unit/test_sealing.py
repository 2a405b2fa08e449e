"""Signature secrets sealed at rest: AES-GCM under a configured key whose id
travels with the value, so keys rotate (new values sealed with the first key,
old ones still open) and nothing on the topic holds the secret in clear."""

from __future__ import annotations

import pytest

from services.applications.register import sealed
from services.applications.registry import ApplicationRegistry
from services.applications.sealing import SealingError, SecretKeys
from services.kafka import KafkaSettings
from tests.unit.gateway.fakes import make_app

OLD = "old=" + "a" * 43
NEW = "new=" + "b" * 43
SECRET = "whsec-a-signature-secret-of-the-app"


def test_a_sealed_secret_opens_and_does_not_show_through() -> None:
    keys = SecretKeys.parse(OLD)
    value = keys.seal(SECRET)
    assert SECRET not in value and value.startswith("sealed:v1:old:")
    assert keys.open(value) == SECRET
    assert keys.seal(SECRET) != value  # a fresh nonce every time


def test_rotation_new_key_seals_old_key_still_opens() -> None:
    old_value = SecretKeys.parse(OLD).seal(SECRET)
    rotated = SecretKeys.parse(f"{NEW},{OLD}")
    assert rotated.open(old_value) == SECRET
    assert rotated.needs_resealing(old_value)
    assert rotated.seal(SECRET).startswith("sealed:v1:new:")
    with pytest.raises(SealingError, match="'old', which is not configured") as caught:
        SecretKeys.parse(NEW).open(old_value)
    assert SECRET not in str(caught.value)


def test_tampering_or_relabelling_is_detected() -> None:
    keys = SecretKeys.parse(f"{OLD},{NEW}")
    value = keys.seal(SECRET)
    with pytest.raises(SealingError):
        keys.open(value.replace("sealed:v1:old:", "sealed:v1:new:"))
    with pytest.raises(SealingError):
        keys.open(value[:-4] + ("AAAA" if not value.endswith("AAAA") else "BBBB"))


@pytest.mark.parametrize("spec", ["", "k=short", "k=not base64!!", "=" + "a" * 43])
def test_bad_key_configuration_is_refused(spec: str) -> None:
    with pytest.raises(SealingError):
        SecretKeys.parse(spec)


def test_records_are_published_sealed_and_the_registry_opens_them() -> None:
    keys = SecretKeys.parse(OLD)
    app = make_app()
    stored = sealed(make_app().model_copy(update={"signature_secret": SECRET}), keys)
    assert SECRET not in stored.model_dump_json()
    with pytest.raises(SealingError, match="DISPATCH_SECRETS_KEYS is not set"):
        sealed(app, None)

    registry = ApplicationRegistry(KafkaSettings(), keys)
    registry.apply(stored)
    found = registry.get(stored.application_id)
    assert found is not None and found.signature_secret == SECRET
