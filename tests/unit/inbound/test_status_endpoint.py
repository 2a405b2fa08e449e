"""The inbound status endpoint's matrix, through its ASGI routes."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.errors import KafkaConnectionError
from starlette.applications import Starlette

from events.codec import decode_event
from events.dispatch import MessageStatusReceived, MessageSubmitted
from events.topics import Topics
from services.inbound.index import MessageIndex
from services.inbound.routes import InboundDeps, inbound_routes
from services.inbound.signature import sign
from services.kafka import KafkaSettings

SETTINGS = KafkaSettings(topics=Topics.from_prefix("unit."))
DISPATCH = uuid.UUID("11111111-2222-3333-4444-555555555555")
KNOWN = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
SECRET = "callback-secret-of-at-least-32-bytes!"


class RecordingProducer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        if self.fail:
            raise KafkaConnectionError("broker down")
        self.sent.append((topic, value, key))


def _client(secret: str = "", fail: bool = False) -> tuple[httpx.AsyncClient, RecordingProducer]:
    index = MessageIndex(SETTINGS)
    index.apply(
        MessageSubmitted(
            dispatch_uuid=DISPATCH, step=2, command_id=uuid.uuid4(), message_uuid=KNOWN
        )
    )
    producer = RecordingProducer(fail=fail)
    deps = InboundDeps(
        index=index,
        producer=producer,
        events_topic=SETTINGS.topics.events,
        signature_secret=secret,
        allow_unsigned=not secret,
    )
    app = Starlette(routes=inbound_routes(deps))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    return client, producer


def _status(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_uuid": KNOWN,
        "to": {"type": "sms", "number": "447700900000"},
        "from": {"type": "sms", "number": "447700900999"},
        "timestamp": "2020-01-01T14:00:00.000Z",
        "status": "delivered",
        "usage": {"currency": "EUR", "price": "0.0333"},
    }
    body.update(overrides)
    return body


def _post(client: httpx.AsyncClient, body: bytes, **headers: str) -> Any:
    return client.post(
        "/v0.1/status", content=body, headers={"content-type": "application/json", **headers}
    )


async def test_a_status_becomes_an_event_on_its_dispatchs_partition() -> None:
    client, producer = _client()
    async with client:
        response = await _post(client, orjson.dumps(_status()))
    assert response.status_code == 204
    ((topic, value, key),) = producer.sent
    assert topic == SETTINGS.topics.events
    assert key == str(DISPATCH).encode()
    event = decode_event(value)
    assert isinstance(event, MessageStatusReceived)
    assert (event.dispatch_uuid, event.step, event.status) == (DISPATCH, 2, "delivered")
    assert event.usage is not None and event.usage.price == "0.0333"
    assert event.from_["number"] == "447700900999"


async def test_a_duplicate_is_accepted_and_carries_the_same_event_id() -> None:
    client, producer = _client()
    async with client:
        first = await _post(client, orjson.dumps(_status()))
        second = await _post(client, orjson.dumps(_status()))
    assert (first.status_code, second.status_code) == (204, 204)
    ids = {decode_event(value).event_id for _, value, _ in producer.sent}
    assert len(ids) == 1


async def test_an_unknown_message_uuid_is_a_404_problem() -> None:
    client, producer = _client()
    async with client:
        response = await _post(client, orjson.dumps(_status(message_uuid="nope")))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "nope" in response.json()["detail"]
    assert producer.sent == []


@pytest.mark.parametrize(
    ("body", "bad_fields"),
    [
        (_status(status="lost"), {"status"}),
        (_status(timestamp="yesterday"), {"timestamp"}),
        (
            {k: v for k, v in _status().items() if k not in ("to", "message_uuid")},
            {"to", "message_uuid"},
        ),
        (_status(usage={"currency": "EUR"}), {"usage.price"}),
        (_status(error={"code": "x"}), {"error.code", "error.reason"}),
    ],
)
async def test_invalid_fields_are_a_422_naming_each(
    body: dict[str, Any], bad_fields: set[str]
) -> None:
    client, producer = _client()
    async with client:
        response = await _post(client, orjson.dumps(body))
    assert response.status_code == 422
    problem = response.json()
    assert {p["name"] for p in problem["invalid_parameters"]} == bad_fields
    assert producer.sent == []


async def test_malformed_requests_get_their_4xx() -> None:
    client, _ = _client()
    async with client:
        assert (await _post(client, b"{not json")).status_code == 400
        assert (await _post(client, b"[1, 2]")).status_code == 422
        wrong_type = await client.post(
            "/v0.1/status", content=orjson.dumps(_status()), headers={"content-type": "text/plain"}
        )
        assert wrong_type.status_code == 415
        huge = orjson.dumps(_status(padding="x" * 100_000))
        assert (await _post(client, huge)).status_code == 413
        for response in [await _post(client, b"{not json"), wrong_type]:
            assert response.headers["content-type"] == "application/problem+json"


async def test_a_signed_callback_is_accepted_when_a_secret_is_configured() -> None:
    client, producer = _client(secret=SECRET)
    body = orjson.dumps(_status())
    async with client:
        response = await _post(client, body, authorization=sign(body, SECRET))
    assert response.status_code == 204
    assert len(producer.sent) == 1


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "wrong-secret",
        "other-body",
        "stale",
        "future",
    ],
)
async def test_unsigned_or_badly_signed_callbacks_are_401(authorization: str | None) -> None:
    client, producer = _client(secret=SECRET)
    body = orjson.dumps(_status())
    headers: dict[str, str] = {}
    if authorization == "wrong-secret":
        headers["authorization"] = sign(body, "not-the-secret-but-also-32-bytes-long")
    elif authorization == "stale":  # a replay of a callback signed 6 minutes ago
        headers["authorization"] = sign(body, SECRET, now=time.time() - 360)
    elif authorization == "future":
        headers["authorization"] = sign(body, SECRET, now=time.time() + 120)
    elif authorization == "other-body":
        headers["authorization"] = sign(orjson.dumps(_status(status="read")), SECRET)
    elif authorization is not None:
        headers["authorization"] = authorization
    async with client:
        response = await _post(client, body, **headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert producer.sent == []


async def test_without_a_secret_nothing_is_accepted_unless_unsigned_is_allowed() -> None:
    # Fail closed: a host that forgot the secret but did not opt into unsigned
    # callbacks refuses every callback instead of accepting all of them.
    producer = RecordingProducer()
    deps = InboundDeps(
        index=MessageIndex(SETTINGS), producer=producer, events_topic="t", signature_secret=""
    )
    app = Starlette(routes=inbound_routes(deps))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw"
    ) as strict:
        body = orjson.dumps(_status())
        response = await _post(strict, body, authorization=sign(body, "x" * 32))
    assert response.status_code == 401
    assert producer.sent == []


async def test_kafka_down_is_a_503_the_provider_retries() -> None:
    client, _ = _client(fail=True)
    async with client:
        response = await _post(client, orjson.dumps(_status()))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_callback_nested_too_deep_is_422_and_writes_nothing() -> None:
    client, producer = _client()
    raw = orjson.dumps(_status(to="PLACEHOLDER")).replace(
        b'"PLACEHOLDER"', b'{"a":' * 300 + b"1" + b"}" * 300
    )
    async with client:
        response = await _post(client, raw)
    assert response.status_code == 422
    assert response.json()["invalid_parameters"][0]["name"].startswith("to.a.a")
    assert producer.sent == []
