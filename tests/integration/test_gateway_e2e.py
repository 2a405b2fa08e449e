"""The real ``dispatch-gateway`` process on the real broker: an application
created with the CLI after the gateway started can dispatch at once, and the
202 means ``WorkflowRequested`` is on ``dispatch.events`` with exactly the
request's content, keyed by its dispatch_uuid."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from events.codec import decode_event
from events.dispatch import WorkflowRequested
from services.kafka import KafkaSettings
from tests.integration.test_gateway_support import (
    basic_auth,
    create_app,
    post_until_known,
    start_gateway,
    wait_ready,
)
from tests.kafka_helpers import read_records
from tests.processes import Process
from tests.unit.gateway.fakes import valid_dispatch

pytestmark = pytest.mark.kafka


async def test_dispatch_lands_on_the_log_with_the_request_content(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    gateway, base_url = start_gateway(kafka_settings, tmp_path)
    processes.append(gateway)
    wait_ready(base_url)

    # Registered after the gateway started: it must pick this up without a restart.
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem_file = tmp_path / "public.pem"
    pem_file.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    app = create_app(kafka_settings, "--public-key-file", str(pem_file))

    body = valid_dispatch()
    by_basic = post_until_known(base_url, body, basic_auth(app), **{"Idempotency-Key": "o-1"})
    assert by_basic.status_code == 202, by_basic.text
    again = post_until_known(base_url, body, basic_auth(app), **{"Idempotency-Key": "o-1"})
    assert again.json() == by_basic.json()

    token = jwt.encode(
        {"application_id": app["application_id"], "exp": int(time.time()) + 60},
        private_key,
        algorithm="RS256",
    )
    by_jwt = post_until_known(base_url, body, f"Bearer {token}")
    assert by_jwt.status_code == 202, by_jwt.text

    # Read past the two expected events for a while: a second event for the
    # idempotent repeat would show up as a third.
    records = await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda r: len(r) > 2, timeout=4
    )
    assert len(records) == 2
    by_uuid = {}
    for record in records:
        event = decode_event(record.value)
        assert isinstance(event, WorkflowRequested)
        assert record.key == str(event.dispatch_uuid).encode()
        by_uuid[str(event.dispatch_uuid)] = event
    assert set(by_uuid) == {by_basic.json()["dispatch_uuid"], by_jwt.json()["dispatch_uuid"]}
    for event in by_uuid.values():
        assert event.application_id == app["application_id"]
        assert event.template == "failover"
        assert event.workflow == body["workflow"]
    assert by_uuid[by_basic.json()["dispatch_uuid"]].idempotency_key == "o-1"

    async with httpx.AsyncClient(timeout=5) as client:
        metrics = (await client.get(f"{base_url}/metrics")).text
    assert "dispatch_gateway_produce_seconds_count" in metrics
