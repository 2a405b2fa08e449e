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
from events.dispatch import MessageStatusReceived
from events.topics import Topics
from services.gateway.rate_limit import RateLimiter
from services.inbound.lookup import LookupUnavailable, MessageRef
from services.inbound.routes import InboundDeps, inbound_routes
from services.kafka import KafkaSettings
from services.payload_signature import sign

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


class KnownMessages:
    """The read side's message table, as a dict (the real one is tested with
    the projector); ``down`` plays a read side that cannot be reached."""

    def __init__(self, down: bool = False) -> None:
        self.down = down
        self.asked: list[str] = []
        self.refs = {KNOWN: MessageRef(DISPATCH, 2)}

    async def lookup(self, message_uuid: str) -> MessageRef | None:
        self.asked.append(message_uuid)
        if self.down:
            raise LookupUnavailable("projector unreachable")
        return self.refs.get(message_uuid)


def _client(
    secret: str = "", fail: bool = False, lookup: KnownMessages | None = None
) -> tuple[httpx.AsyncClient, RecordingProducer]:
    producer = RecordingProducer(fail=fail)
    deps = InboundDeps(
        lookup=lookup or KnownMessages(),
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
        lookup=KnownMessages(), producer=producer, events_topic="t", signature_secret=""
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


async def test_a_status_naming_our_client_ref_is_routed_without_a_lookup() -> None:
    lookup = KnownMessages()
    client, producer = _client(lookup=lookup)
    other = uuid.UUID("99999999-2222-3333-4444-555555555555")
    body = _status(message_uuid="never-seen-before", client_ref=f"{other}:1")
    async with client:
        response = await _post(client, orjson.dumps(body))
    assert response.status_code == 204, response.text
    assert lookup.asked == []
    ((_, value, key),) = producer.sent
    event = decode_event(value)
    assert isinstance(event, MessageStatusReceived)
    assert (event.dispatch_uuid, event.step, key) == (other, 1, str(other).encode())


async def test_a_foreign_client_ref_falls_back_to_the_read_side() -> None:
    lookup = KnownMessages()
    client, producer = _client(lookup=lookup)
    async with client:
        response = await _post(client, orjson.dumps(_status(client_ref="their-own-ref-42")))
    assert response.status_code == 204, response.text
    assert lookup.asked == [KNOWN]
    event = decode_event(producer.sent[0][1])
    assert isinstance(event, MessageStatusReceived) and event.dispatch_uuid == DISPATCH


async def test_a_read_side_that_cannot_be_asked_is_a_503_the_provider_retries() -> None:
    client, producer = _client(lookup=KnownMessages(down=True))
    async with client:
        response = await _post(client, orjson.dumps(_status()))
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert producer.sent == []


async def test_callbacks_past_the_rate_limit_get_429_and_write_nothing() -> None:
    producer = RecordingProducer()
    deps_limiter = RateLimiter(1.0, 3, clock=lambda: 0.0)
    app = Starlette(
        routes=inbound_routes(
            InboundDeps(
                lookup=KnownMessages(),
                producer=producer,
                events_topic=SETTINGS.topics.events,
                allow_unsigned=True,
                rate_limiter=deps_limiter,
            )
        )
    )
    limited = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    async with limited:
        answers = [
            (await _post(limited, orjson.dumps(_status(timestamp=f"2020-01-01T14:00:0{n}Z"))))
            for n in range(5)
        ]
    assert [a.status_code for a in answers] == [204, 204, 204, 429, 429]
    assert answers[3].headers["retry-after"] == "1"
    assert answers[3].headers["content-type"] == "application/problem+json"
    assert len(producer.sent) == 3


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
