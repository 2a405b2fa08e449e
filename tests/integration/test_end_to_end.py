"""End to end through the real broker, gateway, processor, sender, simulator,
webhook deliverer and projector, with a real webhook receiver: every scenario
of the failover template, as a client sees it (webhooks, final report, GET)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from jsonschema import Draft202012Validator

from services.gateway.app import OPENAPI_PATH
from services.kafka import KafkaSettings
from tests.integration.stack import (
    Receiver,
    Stack,
    post_until_accepted,
    serve_receiver,
    wait_for_finals,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.kafka


def item(channel: str, number: str, failover: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"type": channel, "number": "447700900000"},
        "to": {"type": channel, "number": number},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if failover is not None:
        body["failover"] = failover
    return body


def failover(expiry: int = 15, condition: str = "delivered") -> dict[str, Any]:
    return {"expiry_time": expiry, "condition_status": condition}


# name → (workflow, expected final status, expected statuses per message in order)
SCENARIOS: dict[str, tuple[list[dict[str, Any]], str, list[list[str]]]] = {
    "first message delivered": (
        [item("sms", "447700900001", failover(60)), item("whatsapp", "447700900000")],
        "completed",
        [["submitted", "delivered"]],
    ),
    "deadline passes, next message delivered": (
        [item("whatsapp", "447700900004", failover(15, "read")), item("sms", "447700900001")],
        "completed",
        [["submitted"], ["submitted", "delivered"]],
    ),
    "rejected at once, next undeliverable": (
        [item("sms", "447700900002", failover(60)), item("sms", "447700900003")],
        "error",
        [["rejected"], ["submitted", "undeliverable"]],
    ),
    "delivered but never read, condition read": (
        [item("sms", "447700900001", failover(15, "read")), item("sms", "447700900000")],
        "completed",
        [["submitted", "delivered"], ["submitted", "delivered", "read"]],
    ),
    "provider answers after the sender gave up waiting": (
        # The send's outcome is unknown to the sender (read timeout); it is not
        # sent again, and the statuses naming its client_ref complete it.
        [item("sms", "447700900006", failover(60)), item("sms", "447700900001")],
        "completed",
        [["submitted", "delivered"]],
    ),
    "single message rejected": (
        [item("sms", "447700900002")],
        "error",
        [["rejected"]],
    ),
}

PRICE_SMS = "0.0333"

_OPENAPI = orjson.loads(OPENAPI_PATH.read_bytes())


def _schema(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": _OPENAPI["components"]}
    )


# The GET answers are what the OpenAPI document says they are.
VIEW_SCHEMA = _schema("DispatchView")
HISTORY_SCHEMA = _schema("DispatchHistory")
STATUS_SCHEMA = _schema("MessageStatusCallback")
FINAL_SCHEMA = _schema("FinalReport")


@pytest.fixture
async def stack(
    kafka_settings: KafkaSettings, tmp_path: Path, store_url: str
) -> AsyncIterator[Stack]:
    """The whole product, its read side on SQLite and then on PostgreSQL."""
    receiver = Receiver()
    async with serve_receiver(receiver):
        stack = Stack(settings=kafka_settings, tmp=tmp_path, receiver=receiver, store_url=store_url)
        try:
            await asyncio.to_thread(stack.start_all)
            yield stack
        finally:
            await asyncio.to_thread(stack.stop_all)


async def test_every_failover_scenario_end_to_end(stack: Stack) -> None:
    app = stack.create_app("shop")
    other = stack.create_app("other")
    async with httpx.AsyncClient(timeout=10) as client:
        uuids = {
            name: await post_until_accepted(
                client, stack, app, {"template": "failover", "workflow": wf}
            )
            for name, (wf, _, _) in SCENARIOS.items()
        }
        await wait_for_finals(stack, list(uuids.values()), timeout=90)
        # Late statuses (the read after completion) still arrive as webhooks.
        await wait_until(
            lambda: all(
                len(stack.receiver.of(uuids[name], "status")) >= sum(map(len, expected))
                for name, (_, _, expected) in SCENARIOS.items()
            ),
            30,
            what="every scenario's status webhooks arrived",
        )

        for name, (_, final_status, expected) in SCENARIOS.items():
            dispatch_uuid = uuids[name]
            statuses = stack.receiver.of(dispatch_uuid, "status")
            finals = stack.receiver.of(dispatch_uuid, "final")
            assert len(finals) == 1, f"{name}: {len(finals)} final reports"
            final = finals[0]
            FINAL_SCHEMA.validate(final)
            for status in statuses:
                STATUS_SCHEMA.validate(status)
            assert final["status"] == final_status, name
            assert final["template"] == "failover"

            # One message_uuid per sent step, in the order the steps were sent.
            sent = [link["message_uuid"] for link in final["_links"]["messages"]]
            assert len(sent) == len(expected), f"{name}: sent {sent}"
            for index, message_uuid in enumerate(sent):
                seen = [s["status"] for s in statuses if s["message_uuid"] == message_uuid]
                assert seen == expected[index], f"{name}, message {index}: {seen}"
            for status in statuses:
                assert status["dispatch_uuid"] == dispatch_uuid
                assert status["_links"]["workflow"] == {
                    "dispatch_uuid": dispatch_uuid,
                    "href": f"/workflows/{dispatch_uuid}",
                }

            delivered = sum(1 for e in expected if "delivered" in e)
            expected_price = f"{float(PRICE_SMS) * delivered:.4f}" if delivered else "0"
            assert float(final["usage"]["price"]) == pytest.approx(float(expected_price)), name

            got = await client.get(
                f"{stack.gateway}/v0.1/dispatch/{dispatch_uuid}", headers=app.auth
            )
            assert got.status_code == 200, got.text
            view = got.json()
            VIEW_SCHEMA.validate(view)
            assert view["status"] == final_status
            assert [s["message_uuid"] for s in view["steps"] if s["message_uuid"]] == sent
            href = await client.get(f"{stack.gateway}/workflows/{dispatch_uuid}", headers=app.auth)
            assert href.status_code == 200
            events = await client.get(
                f"{stack.gateway}/v0.1/dispatch/{dispatch_uuid}/events", headers=app.auth
            )
            HISTORY_SCHEMA.validate(events.json())
            types = [e["type"] for e in events.json()["events"]]
            assert types[0] == "WorkflowRequested"
            assert (
                "WorkflowCompleted" if final_status == "completed" else "WorkflowFailed"
            ) in types

            hidden = await client.get(
                f"{stack.gateway}/v0.1/dispatch/{dispatch_uuid}", headers=other.auth
            )
            assert hidden.status_code == 404
            assert hidden.headers["content-type"] == "application/problem+json"

        # The rejected first message is reported with the provider's reason.
        rejected = stack.receiver.of(uuids["rejected at once, next undeliverable"], "status")[0]
        assert rejected["status"] == "rejected" and rejected["error"]["code"] == 1020

        # Never sent twice, and the completed-first dispatch never sent its second message.
        sends = (await client.get(f"{stack.simulator}/_sim/sends")).json()["attempts"]
        assert all(count == 1 for count in sends.values()), sends

    stack.receiver.verify_all()
    replay = stack.cli("replay")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "replay equals live" in replay.stdout
    # Re-running the failover engine over the recorded log takes every decision again.
    reproduced = re.search(r"decisions: (\d+) of (\d+) on the log reproduced", replay.stdout)
    assert reproduced is not None, replay.stdout
    # At least a StepStarted and the final decision of every dispatch.
    assert reproduced.group(1) == reproduced.group(2)
    assert int(reproduced.group(1)) >= 2 * len(SCENARIOS)
