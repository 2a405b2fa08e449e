"""A flood of signed statuses for one message stays bounded: 10,000 distinct
callbacks reach the log (they are facts), but the dispatch's state and the
client's webhooks keep at most 16 of them, and the processor goes on working."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from services.kafka import KafkaSettings
from services.payload_signature import sign
from tests.integration.stack import (
    Receiver,
    Stack,
    post_until_accepted,
    serve_receiver,
    wait_for_finals,
)
from tests.kafka_helpers import read_records

pytestmark = pytest.mark.kafka

SECRET = "flood-test-callback-secret-0123456789"
FLOOD = 10_000
BOUND = 16


@pytest.fixture
async def stack(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[Stack]:
    receiver = Receiver()
    async with serve_receiver(receiver):
        stack = Stack(
            settings=kafka_settings,
            tmp=tmp_path,
            receiver=receiver,
            extra_env={
                "INBOUND_SIGNATURE_SECRET": SECRET,
                "SIMULATOR_SIGNATURE_SECRET": SECRET,
                "INBOUND_RATE_LIMIT_PER_S": "0",
            },
        )
        try:
            await asyncio.to_thread(stack.start_all)
            yield stack
        finally:
            await asyncio.to_thread(stack.stop_all)


def _sms(number: str, expiry: int | None = None) -> dict[str, object]:
    item: dict[str, object] = {
        "from": {"type": "sms", "number": "447700900000"},
        "to": {"type": "sms", "number": number},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if expiry is not None:
        item["failover"] = {"expiry_time": expiry, "condition_status": "read"}
    return item


async def test_ten_thousand_distinct_statuses_for_one_message_stay_bounded(
    stack: Stack, kafka_settings: KafkaSettings
) -> None:
    app = stack.create_app("shop")
    async with httpx.AsyncClient(timeout=30) as client:
        # Digit 4: submitted, then silence; the flood comes on top of that.
        body = {
            "template": "failover",
            "workflow": [_sms("447700900004", 600), _sms("447700900001")],
        }
        target = await post_until_accepted(client, stack, app, body)
        message_uuid = None
        for _ in range(200):
            got = await client.get(f"{stack.gateway}/v0.1/dispatch/{target}", headers=app.auth)
            if got.status_code == 200 and got.json()["steps"][0]["message_uuid"]:
                message_uuid = got.json()["steps"][0]["message_uuid"]
                break
            await asyncio.sleep(0.1)
        assert message_uuid is not None

        start = datetime(2026, 1, 1, tzinfo=UTC)
        slots = asyncio.Semaphore(32)
        answers: list[int] = []

        async def post(n: int) -> None:
            payload = orjson.dumps(
                {
                    "message_uuid": message_uuid,
                    "client_ref": f"{target}:0",
                    "to": {"type": "sms", "number": "447700900004"},
                    "from": {"type": "sms", "number": "447700900000"},
                    "timestamp": (start + timedelta(seconds=n)).isoformat(),
                    "status": "submitted",
                }
            )
            async with slots:
                response = await client.post(
                    f"{stack.gateway}/v0.1/status",
                    content=payload,
                    headers={
                        "content-type": "application/json",
                        "authorization": sign(payload, SECRET),
                    },
                )
            answers.append(response.status_code)

        await asyncio.gather(*(post(n) for n in range(FLOOD)))
        assert answers.count(204) == FLOOD, {code: answers.count(code) for code in set(answers)}

        # The processor got through the flood and still works: a new dispatch ends.
        after = await post_until_accepted(
            client, stack, app, {"template": "failover", "workflow": [_sms("447700900001")]}
        )
        await wait_for_finals(stack, [after], timeout=120)

        view = (
            await client.get(f"{stack.gateway}/v0.1/dispatch/{target}", headers=app.auth)
        ).json()
    webhooked = [
        s for s in stack.receiver.of(target, "status") if s["message_uuid"] == message_uuid
    ]
    assert len(webhooked) <= BOUND
    assert len(view["steps"][0]["statuses"]) <= BOUND
    # The processor's state of the dispatch, as its changelog holds it: small.
    prefix = kafka_settings.topics.events.removesuffix("dispatch.events")
    changelog = f"{prefix}dispatch-processor-dispatches-changelog"
    records = await read_records(
        kafka_settings,
        changelog,
        until=lambda rs: any(target in (r.key or b"").decode() for r in rs),
    )
    latest = [r for r in records if target in (r.key or b"").decode()][-1]
    assert latest.value is not None and len(latest.value) < 8_000, len(latest.value or b"")
