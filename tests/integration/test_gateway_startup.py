"""A restarted gateway never tells a valid caller its credentials are wrong:
until its registry has caught up with the applications topic it answers 503
(problem+json, Retry-After) and ``/readyz`` says not ready."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from events.applications import ApplicationRegistered
from events.codec import encode
from services.applications.credentials import hash_secret
from services.kafka import KafkaSettings, make_producer
from tests.conftest import kafka_env
from tests.integration.test_gateway_support import CALLBACK_SECRET, basic_auth, create_app
from tests.processes import Process, free_port
from tests.unit.gateway.fakes import valid_dispatch

pytestmark = pytest.mark.kafka

# Other applications ahead of ours on the topic, so loading takes long enough
# for the first requests to land before the registry has caught up.
FILLER_APPLICATIONS = 3000


async def _register_filler(settings: KafkaSettings) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for n in range(FILLER_APPLICATIONS):
            app_id = str(uuid.uuid4())
            record = ApplicationRegistered(
                application_id=app_id,
                name=f"filler-{n}",
                api_key=f"filler{n}",
                api_secret_hash=hash_secret("x"),
                status_url="http://127.0.0.1:9/s",
                final_report_url="http://127.0.0.1:9/f",
                signature_secret="filler",
            )
            await producer.send(settings.topics.applications, encode(record), key=app_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def test_requests_before_the_registry_loaded_get_503_never_401(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    await _register_filler(kafka_settings)
    app = create_app(kafka_settings)  # last on the topic: known only once loading ends

    port = free_port()
    env = {
        **kafka_env(kafka_settings),
        "GATEWAY_PORT": str(port),
        "INBOUND_SIGNATURE_SECRET": CALLBACK_SECRET,
    }
    processes.append(Process("gateway", ["dispatch-gateway"], env, tmp_path))
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": basic_auth(app), "Content-Type": "application/json"}
    body = orjson.dumps(valid_dispatch())

    seen: list[tuple[int, httpx.Response]] = []  # (readyz status just before, POST answer)
    async with httpx.AsyncClient(timeout=10) as client:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                ready = (await client.get(f"{base}/readyz")).status_code
                answer = await client.post(f"{base}/v0.1/dispatch", content=body, headers=headers)
            except httpx.TransportError:
                await asyncio.sleep(0.01)  # not listening yet
                continue
            seen.append((ready, answer))
            if answer.status_code == 202:
                break
            await asyncio.sleep(0.01)

    statuses = [answer.status_code for _, answer in seen]
    assert statuses and statuses[-1] == 202, statuses
    assert 401 not in statuses, statuses
    early = [(ready, answer) for ready, answer in seen if answer.status_code != 202]
    assert early, "no request landed before the registry had loaded"
    for ready, answer in early:
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["retry-after"] == "1"
        assert "registry" in answer.json()["detail"]
        assert ready == 503  # not ready while it cannot judge credentials
    # Once ready, valid credentials are accepted.
    assert all(answer.status_code == 202 for ready, answer in seen if ready == 200)
