"""Kafka over TLS with SASL/SCRAM, end to end: ``broker/kafka.sh`` starts a
broker that way (keytool certificates, SCRAM users made at format time),
every process and the CLI reach it with the configured credentials (faust
included), a dispatch completes, and clients without credentials are
refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from events.topics import Topics
from services.kafka import KafkaSettings, ensure_topics
from services.kafka_security import KafkaSecurity, client_options
from tests.integration.stack import (
    Receiver,
    Stack,
    post_until_accepted,
    serve_receiver,
    wait_for_finals,
)
from tests.processes import free_port

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def secure_broker() -> Iterator[tuple[str, dict[str, str]]]:
    """A SASL_SSL broker of its own: its address and the client environment."""
    port, controller = free_port(), free_port()
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller),
        "KAFKA_SECURITY": "sasl_ssl",
        "KAFKA_READY_TIMEOUT": "240",
    }
    script = str(ROOT / "broker" / "kafka.sh")
    started = subprocess.run(
        [script, "start"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        client_env = dict(
            line.split("=", 1)
            for line in (ROOT / ".local" / f"kafka-{port}" / "client.env").read_text().split()
        )
        yield f"127.0.0.1:{port}", client_env
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120, check=False)


async def _refused(**options: object) -> bool:
    producer = AIOKafkaProducer(request_timeout_ms=5000, **options)  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(producer.start(), 20)
        await asyncio.wait_for(producer.send_and_wait("anything", b"x"), 20)
    except (KafkaError, TimeoutError, OSError):
        return True
    finally:
        await producer.stop()
    return False


async def test_clients_without_valid_credentials_are_refused(
    secure_broker: tuple[str, dict[str, str]],
) -> None:
    bootstrap, env = secure_broker
    security = KafkaSecurity(
        protocol="SASL_SSL",
        ca_file=env["KAFKA_SSL_CAFILE"],
        username="dispatch",
        password="not-the-password",
    )
    tls_only = KafkaSecurity(protocol="SSL", ca_file=env["KAFKA_SSL_CAFILE"])
    assert await _refused(bootstrap_servers=bootstrap)  # plaintext
    assert await _refused(bootstrap_servers=bootstrap, **client_options(tls_only))
    assert await _refused(bootstrap_servers=bootstrap, **client_options(security))


@pytest.fixture
async def secure_stack(
    secure_broker: tuple[str, dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    bootstrap, env = secure_broker
    for name, value in env.items():  # this process and every one it starts
        monkeypatch.setenv(name, value)
    settings = KafkaSettings(
        bootstrap_servers=bootstrap,
        partitions=2,
        topics=Topics.from_prefix(f"t{uuid.uuid4().hex[:10]}."),
    )
    await ensure_topics(settings)
    receiver = Receiver()
    async with serve_receiver(receiver):
        stack = Stack(settings=settings, tmp=tmp_path, receiver=receiver)
        try:
            await asyncio.to_thread(stack.start_all)
            yield stack
        finally:
            await asyncio.to_thread(stack.stop_all)


async def test_a_dispatch_completes_over_sasl_ssl(secure_stack: Stack) -> None:
    app = secure_stack.create_app("shop")  # the CLI, over SASL_SSL too
    body = {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "sms", "number": "447700900000"},
                "to": {"type": "sms", "number": "447700900001"},
                "message": {"content": {"type": "text", "text": "over TLS"}},
            }
        ],
    }
    async with httpx.AsyncClient(timeout=10) as client:
        dispatch_uuid = await post_until_accepted(client, secure_stack, app, body, timeout=60)
    await wait_for_finals(secure_stack, [dispatch_uuid], timeout=120)
    (final,) = secure_stack.receiver.of(dispatch_uuid, "final")
    assert final["status"] == "completed"
