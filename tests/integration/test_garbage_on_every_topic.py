"""Garbage on every topic under load: every process keeps running, every
dispatch still ends, and what could not be read or handled is parked on the
dead-letter topic with its reason and source.

Written to each topic a consumer reads: random bytes, an unknown type, a
schema version this code does not know, a 900 KB record, and, on
``dispatch.events``, a well-formed request whose workflow the processor's
rules refuse once its first step is submitted (the step's failover does not
validate).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from events.codec import encode
from events.dispatch import MessageSubmitted, WorkflowRequested
from services.kafka import KafkaSettings, make_producer
from services.sender.ledger import ledger_topic
from services.webhooks.state import state_topic
from tests.integration.stack import Receiver, Stack, serve_receiver, wait_for_finals
from tests.kafka_helpers import read_records

pytestmark = pytest.mark.kafka


def _sms(number: str, failover: dict[str, object] | None = None) -> dict[str, object]:
    item: dict[str, object] = {
        "from": {"type": "sms", "number": "447700900000"},
        "to": {"type": "sms", "number": number},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if failover:
        item["failover"] = failover
    return item


WORKFLOWS = [
    [_sms("447700900001")],
    [
        _sms("447700900002", {"expiry_time": 60, "condition_status": "delivered"}),
        _sms("447700900000"),
    ],
]


def _garbage(kind: str) -> bytes:
    match kind:
        case "random":
            return os.urandom(300)
        case "unknown type":
            return orjson.dumps({"type": "SomethingElse", "event_id": str(uuid.uuid4())})
        case "future version":
            request = WorkflowRequested(dispatch_uuid=uuid.uuid4(), application_id="x", workflow=[])
            return encode(request).replace(b'"schema_version":1', b'"schema_version":7')
        case "900 KB":
            return b'{"type":"WorkflowRequested","padding":"' + b"x" * 900_000 + b'"}'
    raise AssertionError(kind)


async def _write_garbage(settings: KafkaSettings) -> None:
    topics = [
        settings.topics.events,
        settings.topics.send,
        settings.topics.webhooks,
        settings.topics.applications,
        ledger_topic(settings),
        state_topic(settings),
    ]
    producer = make_producer(settings, max_request_size=2_000_000)
    await producer.start()
    try:
        for topic in topics:
            for kind in ("random", "unknown type", "future version", "900 KB"):
                key = str(uuid.uuid4()).encode()
                await producer.send_and_wait(topic, _garbage(kind), key=key)
        # Well-formed, but the rules refuse it: an expiry_time that is not a number.
        poisoned = uuid.uuid4()
        bad_item = _sms("447700900001", {"expiry_time": "soon", "condition_status": "delivered"})
        request = WorkflowRequested(
            dispatch_uuid=poisoned, application_id="x", workflow=[bad_item, _sms("447700900001")]
        )
        submitted = MessageSubmitted(
            dispatch_uuid=poisoned, step=0, command_id=uuid.uuid4(), message_uuid="m-poison"
        )
        for event in (request, submitted):
            await producer.send_and_wait(
                settings.topics.events, encode(event), key=str(poisoned).encode()
            )
    finally:
        await producer.stop()


async def test_garbage_on_every_topic_under_load_stops_nothing(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    receiver = Receiver()
    accepted: list[str] = []
    async with serve_receiver(receiver):
        stack = Stack(settings=kafka_settings, tmp=tmp_path, receiver=receiver)
        try:
            await asyncio.to_thread(stack.start_all)
            app = stack.create_app("shop")
            async with httpx.AsyncClient(timeout=15) as client:

                async def post(n: int) -> None:
                    body = {"template": "failover", "workflow": WORKFLOWS[n % len(WORKFLOWS)]}
                    for _ in range(100):
                        response = await client.post(
                            f"{stack.gateway}/v0.1/dispatch",
                            content=orjson.dumps(body),
                            headers={**app.auth, "Content-Type": "application/json"},
                        )
                        if response.status_code == 202:
                            accepted.append(response.json()["dispatch_uuid"])
                            return
                        await asyncio.sleep(0.2)  # the new application is not known yet

                async def load() -> None:
                    for n in range(60):
                        await post(n)
                        await asyncio.sleep(0.1)

                await asyncio.gather(load(), _write_garbage(kafka_settings))
                await wait_for_finals(stack, accepted, timeout=120)
                await asyncio.sleep(2)
            alive = {p.name: p.alive() for p in stack.processes}
        finally:
            await asyncio.to_thread(stack.stop_all)

    assert all(alive.values()), f"{alive}\n{stack.logs()}"
    for dispatch_uuid in accepted:
        assert len(receiver.of(dispatch_uuid, "final")) == 1, dispatch_uuid
    parked = await read_records(
        kafka_settings,
        kafka_settings.topics.dead_letters,
        # Every check below, in the reading: the processes park on their own
        # time, so a read that stops at the first few could miss the rest.
        until=lambda rs: (
            _sources(rs) >= EXPECTED
            and b"not folded into the view" in _reasons(rs)
            and b"step 0 does not validate" in _reasons(rs)
            and _parked_twice(rs)
        ),
        timeout=30,
    )
    assert _sources(parked) >= EXPECTED
    for record in parked:
        headers = dict(record.headers)
        assert headers["reason"] and headers["source"].count(b":") >= 2
    # The poisoned request's submission, refused with the reason.
    assert b"step 0 does not validate" in _reasons(parked)
    # The projector parks the same garbage it could not read: two copies of
    # each unreadable record of dispatch.events (processor and projector).
    assert _parked_twice(parked), [
        (dict(r.headers)["source"], dict(r.headers)["reason"][:80]) for r in parked
    ]


def _parked_twice(records: list[Any]) -> bool:
    """Whether some record of dispatch.events was parked by two processes."""
    events_sources = [
        dict(r.headers)["source"]
        for r in records
        if b"dispatch.events:" in dict(r.headers)["source"]
    ]
    return any(events_sources.count(source) >= 2 for source in events_sources)


# Where dead letters must come from: the processor and the projector (events),
# the sender (send), the deliverer (webhooks).
EXPECTED = {"dispatch.events", "dispatch.send", "dispatch.webhooks"}


def _sources(records: list[Any]) -> set[str]:
    """The topics (without the test's prefix) dead letters name as their source."""
    found = set()
    for record in records:
        topic = dict(record.headers).get("source", b"").decode().rsplit(":", 2)[0]
        found.add(".".join(topic.split(".")[-2:]))
    return found


def _reasons(records: list[Any]) -> bytes:
    return b" ".join(dict(r.headers).get("reason", b"") for r in records)
