"""Status callbacks are authenticated by default, on the real gateway process:
it refuses to start without the signature secret unless unsigned callbacks
are explicitly allowed, and an unsigned, badly signed or stale callback gets
401 and writes nothing, whether or not its message exists."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from events.codec import decode_event, encode
from events.dispatch import MessageStatusReceived, MessageSubmitted
from services.kafka import KafkaSettings, make_producer
from services.payload_signature import sign
from tests.conftest import kafka_env
from tests.integration.test_gateway_support import CALLBACK_SECRET, start_gateway, wait_ready
from tests.kafka_helpers import read_records
from tests.processes import BIN, Process, free_port

pytestmark = pytest.mark.kafka


def test_the_gateway_refuses_to_start_without_a_callback_secret(
    kafka_settings: KafkaSettings,
) -> None:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("INBOUND_")}
    env = {**inherited, **kafka_env(kafka_settings), "GATEWAY_PORT": str(free_port())}
    result = subprocess.run(
        [str(BIN / "dispatch-gateway")],
        env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "INBOUND_SIGNATURE_SECRET" in output
    assert "INBOUND_ALLOW_UNSIGNED_CALLBACKS=1" in output


async def _submitted(settings: KafkaSettings) -> tuple[uuid.UUID, str]:
    """A message sent for a dispatch: its MessageSubmitted on the log."""
    dispatch, message_uuid = uuid.uuid4(), str(uuid.uuid4())
    producer = make_producer(settings)
    await producer.start()
    try:
        event = MessageSubmitted(
            dispatch_uuid=dispatch, step=0, command_id=uuid.uuid4(), message_uuid=message_uuid
        )
        await producer.send_and_wait(
            settings.topics.events, encode(event), key=str(dispatch).encode()
        )
    finally:
        await producer.stop()
    return dispatch, message_uuid


def _status(message_uuid: str, dispatch: uuid.UUID | None = None) -> bytes:
    # A provider echoes the client_ref it was sent with (dispatch and step).
    return orjson.dumps(
        {
            "message_uuid": message_uuid,
            "client_ref": f"{dispatch or uuid.uuid4()}:0",
            "to": {"type": "sms", "number": "447700900000"},
            "from": {"type": "sms", "number": "447700900001"},
            "timestamp": "2026-01-01T12:00:00Z",
            "status": "delivered",
            "usage": {"currency": "EUR", "price": "0.0333"},
        }
    )


async def _post(
    client: httpx.AsyncClient, base: str, body: bytes, auth: str | None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    deadline = time.monotonic() + 20
    while True:  # 503 until the inbound endpoint has started
        response = await client.post(f"{base}/v0.1/status", content=body, headers=headers)
        if response.status_code != 503 or time.monotonic() > deadline:
            return response


async def test_unsigned_forged_or_stale_callbacks_get_401_and_write_nothing(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    dispatch, message_uuid = await _submitted(kafka_settings)
    gateway, base = start_gateway(kafka_settings, tmp_path)
    processes.append(gateway)
    wait_ready(base)

    known, unknown = _status(message_uuid, dispatch), _status(str(uuid.uuid4()))
    attempts = {
        "unsigned": (known, None),
        "unsigned, unknown message": (unknown, None),
        "wrong secret": (known, sign(known, "an-attacker-guess-of-32-bytes-or-more")),
        "wrong secret, unknown message": (
            unknown, sign(unknown, "an-attacker-guess-of-32-bytes-or-more")
        ),
        "signed for another body": (known, sign(_status("other"), CALLBACK_SECRET)),
        "stale (signed 6 min ago)": (known, sign(known, CALLBACK_SECRET, now=time.time() - 360)),
    }  # fmt: skip
    async with httpx.AsyncClient(timeout=10) as client:
        answers = {
            name: await _post(client, base, body, auth) for name, (body, auth) in attempts.items()
        }
        details = set()
        for name, answer in answers.items():
            assert answer.status_code == 401, (name, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert message_uuid not in answer.text
            details.add(answer.json()["title"])
        assert len(details) == 1  # nothing tells a known message from an unknown one

        # Nothing but our own MessageSubmitted is on the log.
        records = await read_records(
            kafka_settings, kafka_settings.topics.events, until=lambda r: len(r) > 1, timeout=3
        )
        assert len(records) == 1

        # The provider's own, freshly signed callback is accepted.
        accepted = await _post(client, base, known, sign(known, CALLBACK_SECRET))
        assert accepted.status_code == 204, accepted.text
    records = await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda r: len(r) >= 2, timeout=10
    )
    status = decode_event(records[-1].value)
    assert isinstance(status, MessageStatusReceived)
    assert status.dispatch_uuid == dispatch and status.status == "delivered"


async def test_unsigned_callbacks_only_when_explicitly_allowed(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    dispatch, message_uuid = await _submitted(kafka_settings)
    gateway, base = start_gateway(
        kafka_settings, tmp_path, INBOUND_SIGNATURE_SECRET="",
        INBOUND_ALLOW_UNSIGNED_CALLBACKS="1",
    )  # fmt: skip
    processes.append(gateway)
    wait_ready(base)
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await _post(client, base, _status(message_uuid, dispatch), None)
    assert answer.status_code == 204, answer.text
    assert "UNSIGNED status callbacks" in gateway.log()
