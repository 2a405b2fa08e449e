"""The broker restarts while dispatches are in flight: nothing accepted is lost.

The whole product runs on a broker of its own (so the restart disturbs no other
test); dispatches are accepted, the broker is stopped and started again on the
same storage, and every accepted dispatch still ends with exactly one final
report and the statuses a client expects. A POST during the outage is refused
with 503, never accepted and lost.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from events.topics import Topics
from services.kafka import KafkaSettings, ensure_topics
from tests.integration.stack import (
    Receiver,
    Stack,
    post_until_accepted,
    serve_receiver,
    wait_for_finals,
)
from tests.processes import free_port

pytestmark = pytest.mark.kafka

KAFKA_SH = Path(__file__).resolve().parents[2] / "broker" / "kafka.sh"


class Broker:
    def __init__(self) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_HEAP": "384m",
            # A restart on a busy 2-core machine can take more than the default.
            "KAFKA_READY_TIMEOUT": "180",
        }

    def run(self, command: str, *, keep_data: bool = False) -> None:
        env = {**self.env, "KAFKA_KEEP_DATA": "1" if keep_data else "0"}
        subprocess.run([str(KAFKA_SH), command], env=env, check=True, timeout=120)


@pytest.fixture
def own_broker() -> Iterator[Broker]:
    broker = Broker()
    broker.run("start")
    try:
        yield broker
    finally:
        broker.run("stop")


def item(channel: str, number: str, failover: dict[str, object] | None = None) -> dict[str, object]:
    body: dict[str, object] = {
        "from": {"type": channel, "number": "447700900000"},
        "to": {"type": channel, "number": number},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if failover:
        body["failover"] = failover
    return body


async def test_dispatches_in_flight_survive_a_broker_restart(
    own_broker: Broker, tmp_path: Path
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{own_broker.port}",
        partitions=4,
        topics=Topics.from_prefix("restart."),
    )
    await ensure_topics(settings)
    receiver = Receiver()
    async with serve_receiver(receiver):
        stack = Stack(settings=settings, tmp=tmp_path, receiver=receiver)
        os.environ["E2E_SIMULATOR_SPEED"] = "1"
        try:
            await asyncio.to_thread(stack.start_all)
            app = stack.create_app("shop")
            delivered = {"template": "failover", "workflow": [item("sms", "447700900001")]}
            fails_over = {
                "template": "failover",
                "workflow": [
                    item(
                        "whatsapp", "447700900004", {"expiry_time": 15, "condition_status": "read"}
                    ),
                    item("sms", "447700900001"),
                ],
            }
            async with httpx.AsyncClient(timeout=10) as client:
                # Every process up and working before the fault.
                warm_up = await post_until_accepted(client, stack, app, delivered)
                await wait_for_finals(stack, [warm_up], timeout=60)
                accepted = [
                    await post_until_accepted(client, stack, app, body)
                    for body in (delivered, delivered, fails_over, fails_over)
                ]
                await asyncio.sleep(0.5)  # in flight: sent, statuses not yet back
                await asyncio.to_thread(own_broker.run, "stop")
                refused = await client.post(
                    f"{stack.gateway}/v0.1/dispatch",
                    content=orjson.dumps(delivered),
                    headers={**app.auth, "Content-Type": "application/json"},
                )
                assert refused.status_code == 503
                assert refused.headers["content-type"] == "application/problem+json"
                await asyncio.sleep(3)
                await asyncio.to_thread(own_broker.run, "start", keep_data=True)

                await wait_for_finals(stack, accepted, timeout=300)
                await asyncio.sleep(2)  # duplicates, if any, would arrive now
        finally:
            os.environ.pop("E2E_SIMULATOR_SPEED", None)
            await asyncio.to_thread(stack.stop_all)

    for dispatch_uuid in accepted:
        finals = receiver.of(dispatch_uuid, "final")
        assert len(finals) == 1, f"{dispatch_uuid}: {len(finals)} final reports\n{stack.logs()}"
        assert finals[0]["status"] == "completed"
    for dispatch_uuid in accepted[2:]:
        links = receiver.of(dispatch_uuid, "final")[0]["_links"]["messages"]
        assert [link["channel"] for link in links] == ["whatsapp", "sms"]
