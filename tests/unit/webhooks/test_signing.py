"""A receiver can tell a genuine webhook from a forged or altered one."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest

from services.webhooks.signing import headers, sign
from services.webhooks.verify import InvalidWebhook, verify_webhook

SECRET = "a-signature-secret-of-32-bytes-or-more"
BODY = b'{"dispatch_uuid":"aaaaaaaa-bbbb-cccc-dddd-0123456789ab","status":"completed"}'


def test_a_signed_body_verifies_and_carries_the_claims() -> None:
    now = time.time()
    claims = verify_webhook(
        BODY, sign(BODY, secret=SECRET, application_id="app-1", now=now), SECRET
    )
    assert claims["application_id"] == "app-1"
    assert claims["iat"] == int(now)
    assert len(claims["payload_hash"]) == 64
    uuid.UUID(claims["jti"])


def test_tampered_body_wrong_secret_and_old_tokens_are_refused() -> None:
    now = time.time()
    token = sign(BODY, secret=SECRET, application_id="app-1", now=now)
    with pytest.raises(InvalidWebhook, match="payload_hash"):
        verify_webhook(BODY.replace(b"completed", b"error"), token, SECRET)
    with pytest.raises(InvalidWebhook):
        verify_webhook(BODY, token, "some-other-secret-also-32-bytes-long")
    with pytest.raises(InvalidWebhook, match="too old"):
        verify_webhook(BODY, token, SECRET, max_age_s=60, now=now + 3600)
    with pytest.raises(InvalidWebhook, match="Bearer"):
        verify_webhook(BODY, "Basic abc", SECRET)


def test_unsigned_and_incomplete_tokens_are_refused() -> None:
    unsigned = jwt.encode({"iat": int(time.time())}, None, algorithm="none")
    with pytest.raises(InvalidWebhook):
        verify_webhook(BODY, f"Bearer {unsigned}", SECRET)
    missing_hash = jwt.encode(
        {"iat": int(time.time()), "jti": "x", "application_id": "a"}, SECRET, algorithm="HS256"
    )
    with pytest.raises(InvalidWebhook):
        verify_webhook(BODY, f"Bearer {missing_hash}", SECRET)


def test_headers_name_the_webhook_and_the_project() -> None:
    webhook_id = uuid.uuid4()
    sent = headers(
        BODY, secret=SECRET, application_id="app-1", webhook_id=webhook_id, attempt=3, now=0
    )
    assert sent["X-Dispatch-Webhook-Id"] == str(webhook_id)
    assert sent["X-Dispatch-Webhook-Attempt"] == "3"
    assert sent["User-Agent"] == "Dispatch-Webhooks/0.1"
    assert sent["Content-Type"] == "application/json"
    assert sent["Authorization"].startswith("Bearer ")
