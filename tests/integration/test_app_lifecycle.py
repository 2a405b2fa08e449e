"""Application lifecycle against the running processes (gateway, deliverer
and the rest, on the real broker): secrets rotated, JWT keys added and
removed, the application revoked, each honoured within 5 seconds."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from services.kafka import KafkaSettings
from services.webhooks.verify import verify_webhook
from tests.integration.stack import Receiver, Stack, serve_receiver, wait_for_finals

pytestmark = pytest.mark.kafka

HONOURED_WITHIN_S = 5.0
BODY = orjson.dumps(
    {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "sms", "number": "447700900000"},
                "to": {"type": "sms", "number": "447700900001"},
                "message": {"content": {"type": "text", "text": "hi"}},
            }
        ],
    }
)


@pytest.fixture
async def stack(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[Stack]:
    receiver = Receiver()
    async with serve_receiver(receiver):
        stack = Stack(settings=kafka_settings, tmp=tmp_path, receiver=receiver)
        try:
            await asyncio.to_thread(stack.start_all)
            yield stack
        finally:
            await asyncio.to_thread(stack.stop_all)


def key_pair(tmp_path: Path, name: str) -> tuple[rsa.RSAPrivateKey, Path]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / f"{name}.pem"
    pem.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, pem


def bearer(app_id: str, key: rsa.RSAPrivateKey, kid: str | None = None) -> str:
    headers = {"kid": kid} if kid else None
    claims = {"application_id": app_id, "iat": int(time.time())}
    return "Bearer " + jwt.encode(claims, key, algorithm="RS256", headers=headers)


def basic(api_key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{api_key}:{secret}".encode()).decode()


async def within(deadline_s: float, check: Callable[[], Awaitable[bool]]) -> float:
    """Seconds until ``check`` holds; fails after ``deadline_s``."""
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError(f"not honoured within {deadline_s} s")


def cli_ok(stack: Stack, *args: str) -> str:
    result = stack.cli("apps", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_rotation_keys_and_revocation_are_honoured_within_seconds(
    stack: Stack, tmp_path: Path
) -> None:
    first_key, first_pem = key_pair(tmp_path, "first")
    second_key, second_pem = key_pair(tmp_path, "second")
    created = orjson.loads(cli_ok(
        stack, "create", "--name", "shop", "--json", "--public-key-file", str(first_pem),
        "--status-url", stack.receiver.url("shop", "status"),
        "--final-report-url", stack.receiver.url("shop", "final"),
    ))  # fmt: skip
    app_id, api_key = created["application_id"], created["api_key"]
    stack.receiver.secrets["shop"] = created["signature_secret"]

    async with httpx.AsyncClient(base_url=stack.gateway, timeout=10) as client:

        async def status(auth: str) -> int:
            response = await client.post(
                "/v0.1/dispatch",
                content=BODY,
                headers={"Authorization": auth, "Content-Type": "application/json"},
            )
            return response.status_code

        def accepted(auth: str) -> Callable[[], Awaitable[bool]]:
            return lambda: _is(status(auth), 202)

        def refused(auth: str) -> Callable[[], Awaitable[bool]]:
            return lambda: _is(status(auth), 401)

        old_basic = basic(api_key, created["api_secret"])
        await within(10, accepted(old_basic))  # a new application: known within seconds
        assert await status(bearer(app_id, first_key)) == 202

        # API secret rotated: the old one stops working, the new one works.
        new_secret = cli_ok(stack, "rotate-secret", app_id).split()[-1]
        new_basic = basic(api_key, new_secret)
        await within(HONOURED_WITHIN_S, refused(old_basic))
        await within(HONOURED_WITHIN_S, accepted(new_basic))

        # A second JWT key: both work during the overlap, by kid or without.
        cli_ok(stack, "add-key", app_id, "--kid", "k2", "--public-key-file", str(second_pem))
        await within(HONOURED_WITHIN_S, accepted(bearer(app_id, second_key, "k2")))
        assert await status(bearer(app_id, second_key)) == 202
        assert await status(bearer(app_id, first_key)) == 202
        assert await status(bearer(app_id, first_key, "k2")) == 401  # kid names the key

        cli_ok(stack, "remove-key", app_id, "--kid", "default")
        await within(HONOURED_WITHIN_S, refused(bearer(app_id, first_key)))
        assert await status(bearer(app_id, second_key, "k2")) == 202

        # Signature secret rotated: the deliverer signs with the new one.
        new_signature = cli_ok(stack, "rotate-secret", app_id, "--signature-secret").split()[-1]
        await asyncio.sleep(HONOURED_WITHIN_S)
        stack.receiver.received.clear()
        response = await client.post(
            "/v0.1/dispatch",
            content=BODY,
            headers={"Authorization": new_basic, "Content-Type": "application/json"},
        )
        dispatch_uuid = response.json()["dispatch_uuid"]
        await wait_for_finals(stack, [dispatch_uuid], timeout=60)
        final = next(r for r in stack.receiver.received if r["kind"] == "final")
        verify_webhook(final["body"], final["authorization"], new_signature)

        # Revoked: every credential refused.
        cli_ok(stack, "revoke", app_id)
        await within(HONOURED_WITHIN_S, refused(new_basic))
        assert await status(bearer(app_id, second_key, "k2")) == 401
    assert stack.cli("apps", "revoke", app_id).returncode != 0  # already gone


async def _is(status: Awaitable[int], expected: int) -> bool:
    return await status == expected
