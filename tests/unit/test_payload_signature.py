"""The one HS256 ``payload_hash`` signature: what the deliverer signs and
receivers verify, what the provider signs and the inbound endpoint verifies."""

from __future__ import annotations

import jwt
import pytest

from services.payload_signature import InvalidPayloadSignature, payload_hash, sign, verify

SECRET = "a-signature-secret-of-32-bytes-or-more"
BODY = b'{"status":"delivered","message_uuid":"m-1"}'
NOW = 1_800_000_000.0


def check(authorization: str | None, body: bytes = BODY, **options: object) -> dict[str, object]:
    settings: dict[str, object] = {"max_age_s": 300.0, "future_skew_s": 30.0, "now": NOW}
    settings.update(options)
    return verify(authorization, body, SECRET, **settings)  # type: ignore[arg-type]


def test_a_signed_body_verifies_with_its_claims() -> None:
    claims = check(sign(BODY, SECRET, now=NOW, claims={"application_id": "app-1"}))
    assert claims["payload_hash"] == payload_hash(BODY)
    assert claims["application_id"] == "app-1" and claims["iat"] == int(NOW)
    # Two signatures of one body differ (fresh jti): a receiver can refuse a replay.
    assert sign(BODY, SECRET, now=NOW) != sign(BODY, SECRET, now=NOW)


def test_a_tampered_body_is_refused() -> None:
    token = sign(BODY, SECRET, now=NOW)
    with pytest.raises(InvalidPayloadSignature, match="payload_hash does not match"):
        check(token, BODY.replace(b"delivered", b"rejected"))


def test_the_wrong_secret_is_refused() -> None:
    with pytest.raises(InvalidPayloadSignature, match="invalid token"):
        check(sign(BODY, "another-secret-also-of-32-bytes-or-more", now=NOW))


def test_an_expired_or_future_token_is_refused() -> None:
    with pytest.raises(InvalidPayloadSignature, match="too old"):
        check(sign(BODY, SECRET, now=NOW - 301))
    check(sign(BODY, SECRET, now=NOW - 299))  # inside the window
    with pytest.raises(InvalidPayloadSignature, match="future"):
        check(sign(BODY, SECRET, now=NOW + 31))
    check(sign(BODY, SECRET, now=NOW + 29))  # inside the skew


def test_a_missing_claim_is_refused() -> None:
    no_hash = jwt.encode({"iat": int(NOW)}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidPayloadSignature, match="payload_hash"):
        check(f"Bearer {no_hash}")
    token = sign(BODY, SECRET, now=NOW)
    with pytest.raises(InvalidPayloadSignature, match="application_id"):
        check(token, required=("application_id",))


@pytest.mark.parametrize(
    "authorization", [None, "", "Basic dXNlcjpwdw==", "Bearer ", "Bearer not-a-jwt"]
)
def test_anything_but_a_bearer_jwt_is_refused(authorization: str | None) -> None:
    with pytest.raises(InvalidPayloadSignature):
        check(authorization)


def test_unsigned_and_asymmetric_algorithms_are_refused() -> None:
    claims = {"iat": int(NOW), "payload_hash": payload_hash(BODY)}
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    with pytest.raises(InvalidPayloadSignature):
        check(f"Bearer {unsigned}")


def test_without_a_secret_nothing_verifies() -> None:
    token = sign(BODY, SECRET, now=NOW)
    with pytest.raises(InvalidPayloadSignature, match="no secret"):
        verify(token, BODY, "", max_age_s=300, future_skew_s=30, now=NOW)
