"""Bearer JWT lifetimes as Vonage's contract defines them: a missing ``exp``
means ``iat`` + 15 minutes, no token lives more than 24 hours, and a small
leeway absorbs clock skew. An unknown application costs an RSA verification
like a bad signature does."""

from __future__ import annotations

import statistics
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.gateway.bearer import BearerRefused, verify_bearer
from tests.unit.gateway.fakes import make_app

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
APP = make_app(public_key_pem=PEM)
NOW = 1_800_000_000.0


def signed(key: Any = KEY, **claims: Any) -> str:
    return jwt.encode({"application_id": "app-1", **claims}, key, algorithm="RS256")


def accepts(token: str, now: float = NOW, leeway_s: float = 30) -> bool:
    try:
        verify_bearer(token, APP, now=now, leeway_s=leeway_s)
    except BearerRefused:
        return False
    return True


def test_the_dispatch_era_sdk_token_without_exp_lives_15_minutes() -> None:
    # What nexmo 2.7.0-beta-1 signs: iat, jti, application_id; nothing else.
    token = signed(iat=int(NOW), jti="2d3e4f")
    assert accepts(token, now=NOW)
    assert accepts(token, now=NOW + 15 * 60)
    assert accepts(token, now=NOW + 15 * 60 + 29)  # within the leeway
    assert not accepts(token, now=NOW + 15 * 60 + 31)


def test_a_token_living_more_than_24_hours_is_refused() -> None:
    assert accepts(signed(iat=int(NOW), exp=int(NOW) + 24 * 3600))
    assert not accepts(signed(iat=int(NOW), exp=int(NOW) + 24 * 3600 + 1))
    assert not accepts(signed(exp=int(NOW) + 25 * 3600))  # no iat: counted from now


def test_clock_skew_within_the_leeway_is_tolerated_and_beyond_refused() -> None:
    assert accepts(signed(iat=int(NOW) + 20))  # client clock 20 s ahead
    assert not accepts(signed(iat=int(NOW) + 60))
    assert accepts(signed(iat=int(NOW) - 900, exp=int(NOW) - 20))
    assert not accepts(signed(iat=int(NOW) - 900, exp=int(NOW) - 20), leeway_s=0)
    assert not accepts(signed(exp=int(NOW) + 60, nbf=int(NOW) + 120))


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (signed(), "needs an exp or an iat"),
        (signed(iat="yesterday"), "iat must be a number"),
        (signed(iat=True), "iat must be a number"),
        (signed(OTHER, iat=int(NOW)), "unknown application or bad signature"),
    ],
)
def test_refusals_say_why(token: str, reason: str) -> None:
    with pytest.raises(BearerRefused, match=reason):
        verify_bearer(token, APP, now=NOW)


def test_an_unknown_application_gets_the_same_answer_and_work_as_a_bad_signature() -> None:
    bad_signature = signed(OTHER, iat=int(time.time()))
    ghost = jwt.encode(
        {"application_id": "ghost", "iat": int(time.time())}, OTHER, algorithm="RS256"
    )

    def refusal(token: str, app: Any) -> tuple[str, float]:
        started = time.perf_counter()
        with pytest.raises(BearerRefused) as caught:
            verify_bearer(token, app)
        return str(caught.value), time.perf_counter() - started

    for _ in range(20):  # warm caches (the application's parsed key)
        refusal(bad_signature, APP)
        refusal(ghost, None)
    wrong = [refusal(bad_signature, APP) for _ in range(300)]
    unknown = [refusal(ghost, None) for _ in range(300)]
    assert {m for m, _ in wrong} == {m for m, _ in unknown}
    # Skipping the RSA verification would make the unknown case several
    # times cheaper; the medians stay close when both do the same work.
    ratio = statistics.median(t for _, t in unknown) / statistics.median(t for _, t in wrong)
    assert ratio > 0.6, ratio
