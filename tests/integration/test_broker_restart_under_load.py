"""The broker restarts under a steady load: nothing wedges, nothing is lost.

Dispatches of mixed outcomes are posted without pause (about 15 a second)
while the broker is stopped for 15 s and started again on its data, so produce
batches of every process are in flight when it goes. Every dispatch the
gateway accepted (202), before, during and after the outage, must end with
exactly one final report, each of its messages sent once, and every status
the provider posted must reach the client. A producer that a restart leaves
failing every write (aiokafka's idempotent producer after expired batches)
would show here as dispatches that never end.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from events.references import client_ref
from events.topics import Topics
from services.kafka import KafkaSettings, ensure_topics
from tests.integration.stack import Receiver, Stack, serve_receiver, wait_for_finals
from tests.integration.test_broker_restart import Broker, item, own_broker  # noqa: F401

pytestmark = pytest.mark.kafka

# (workflow, final status, statuses the client must get per message)
MIX: list[tuple[list[dict[str, object]], str, list[list[str]]]] = [
    ([item("sms", "447700900001")], "completed", [["submitted", "delivered"]]),
    ([item("sms", "447700900000")], "completed", [["submitted", "delivered", "read"]]),
    (
        [
            item("sms", "447700900002", {"expiry_time": 60, "condition_status": "delivered"}),
            item("whatsapp", "447700900001"),
        ],
        "completed",
        [["rejected"], ["submitted", "delivered"]],
    ),
]


async def _post_steadily(
    client: httpx.AsyncClient,
    stack: Stack,
    auth: dict[str, str],
    until: asyncio.Event,
    accepted: dict[str, int],
    answers: list[int],
) -> None:
    n = 0
    while not until.is_set():
        kind = n % len(MIX)
        n += 1
        body = {"template": "failover", "workflow": MIX[kind][0]}
        try:
            response = await client.post(
                f"{stack.gateway}/v0.1/dispatch",
                content=orjson.dumps(body),
                headers={**auth, "Content-Type": "application/json"},
            )
        except httpx.HTTPError:
            answers.append(0)
            continue
        answers.append(response.status_code)
        if response.status_code == 202:
            accepted[response.json()["dispatch_uuid"]] = kind
        else:
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
        await asyncio.sleep(0.25)


async def test_a_broker_restart_under_load_loses_no_dispatch(
    own_broker: Broker,  # noqa: F811
    tmp_path: Path,
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{own_broker.port}",
        partitions=4,
        topics=Topics.from_prefix("load."),
    )
    await ensure_topics(settings)
    receiver = Receiver()
    accepted: dict[str, int] = {}
    answers: list[int] = []
    async with serve_receiver(receiver):
        stack = Stack(
            settings=settings,
            tmp=tmp_path,
            receiver=receiver,
            # A provider keeps retrying a status it could not post.
            extra_env={"SIMULATOR_CALLBACK_ATTEMPTS": "40", "SIMULATOR_SPEED": "2"},
        )
        try:
            await asyncio.to_thread(stack.start_all)
            app = stack.create_app("shop")
            async with httpx.AsyncClient(timeout=15) as client:
                # The application is known to the gateway before the load starts.
                for _ in range(100):
                    warm = await client.post(
                        f"{stack.gateway}/v0.1/dispatch",
                        content=orjson.dumps({"template": "failover", "workflow": MIX[0][0]}),
                        headers={**app.auth, "Content-Type": "application/json"},
                    )
                    if warm.status_code == 202:
                        accepted[warm.json()["dispatch_uuid"]] = 0
                        break
                    await asyncio.sleep(0.2)
                stop_posting = asyncio.Event()
                posters = [
                    asyncio.create_task(
                        _post_steadily(client, stack, app.auth, stop_posting, accepted, answers)
                    )
                    for _ in range(4)
                ]
                await asyncio.sleep(6)
                before_outage = len(accepted)
                await asyncio.to_thread(own_broker.run, "stop")
                # Longer than a producer's request timeout (10 s): batches
                # queued during the outage expire, leaving sequence gaps.
                await asyncio.sleep(15)
                await asyncio.to_thread(own_broker.run, "start", keep_data=True)
                restarted_at = time.monotonic()
                # Posting goes on until a steady stream is accepted again.
                while time.monotonic() - restarted_at < 40:
                    await asyncio.sleep(1)
                    recent = answers[-20:]
                    if len(recent) == 20 and all(code == 202 for code in recent):
                        break
                await asyncio.sleep(5)
                stop_posting.set()
                await asyncio.gather(*posters)
                after_restart = len(accepted) - before_outage
                await wait_for_finals(stack, list(accepted), timeout=300)
                await asyncio.sleep(3)  # duplicates, if any, would arrive now
                sends: dict[str, Any] = (await client.get(f"{stack.simulator}/_sim/sends")).json()
        finally:
            await asyncio.to_thread(stack.stop_all)

    assert before_outage >= 20 and after_restart >= 20, (before_outage, after_restart)
    assert 503 in answers, "the outage was never seen by a client"
    problems: list[str] = []
    for dispatch_uuid, kind in accepted.items():
        _, final_status, expected = MIX[kind]
        finals = receiver.of(dispatch_uuid, "final")
        if len(finals) != 1:
            problems.append(f"{dispatch_uuid}: {len(finals)} final reports")
            continue
        if finals[0]["status"] != final_status:
            problems.append(f"{dispatch_uuid}: ended {finals[0]['status']}")
        statuses = receiver.of(dispatch_uuid, "status")
        links = finals[0]["_links"]["messages"]
        for index, link in enumerate(links):
            seen = {s["status"] for s in statuses if s["message_uuid"] == link["message_uuid"]}
            if not set(expected[index]) <= seen:
                problems.append(f"{dispatch_uuid} message {index}: statuses {sorted(seen)}")
        for step in range(len(links)):
            attempts = sends["attempts"].get(client_ref(dispatch_uuid, step), 0)
            # A refused step may be tried once; an accepted one exactly once.
            if sends["accepted"].get(client_ref(dispatch_uuid, step), 0) > 1 or attempts > 1:
                problems.append(f"{dispatch_uuid} step {step}: sent {attempts} times")
    assert not problems, "\n".join(problems[:20]) + f"\n{len(problems)} problems\n{stack.logs()}"
