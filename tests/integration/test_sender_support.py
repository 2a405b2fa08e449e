"""Helpers shared by the sender, simulator and inbound integration tests: real
processes for the simulator and the sender, and an in-process uvicorn server
hosting the inbound status routes. (No tests in here.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiokafka import ConsumerRecord
from starlette.applications import Starlette

from events.codec import decode_event, encode
from events.commands import SendMessage
from events.dispatch import DispatchEvent
from services.inbound.bootstrap import inbound_deps
from services.inbound.routes import inbound_routes
from services.inbound.settings import InboundSettings
from services.kafka import KafkaSettings, make_producer
from services.simulator.default_rules import DEFAULT_RULES
from tests.conftest import kafka_env
from tests.processes import Process, free_port

SIGNATURE_SECRET = "a-shared-callback-secret-32-bytes-or-more"


def write_rules(tmp_path: Path, extra_scripts: dict[str, Any]) -> str:
    """The default script with some digits replaced."""
    rules = json.loads(json.dumps(DEFAULT_RULES))
    rules["scripts"].update(extra_scripts)
    path = tmp_path / f"rules-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(rules))
    return str(path)


def start_simulator(processes: list[Process], tmp_path: Path, **env: str) -> tuple[Process, str]:
    port = free_port()
    process = Process(
        "simulator",
        ["dispatch-simulator"],
        {"SIMULATOR_PORT": str(port), "SIMULATOR_SEED": "1", **env},
        tmp_path,
    )
    processes.append(process)
    process.wait_for_port(port)
    return process, f"http://127.0.0.1:{port}"


def start_sender(
    processes: list[Process],
    settings: KafkaSettings,
    tmp_path: Path,
    provider_base_url: str,
    *,
    name: str = "sender",
    **env: str,
) -> Process:
    process = Process(
        name,
        ["dispatch-sender"],
        {
            **kafka_env(settings),
            "PROVIDER_BASE_URL": provider_base_url,
            "PROVIDER_AUTH": "basic",
            "PROVIDER_API_KEY": "key",
            "PROVIDER_API_SECRET": "secret",
            "SENDER_RETRY_INITIAL_S": "0.1",
            **env,
        },
        tmp_path,
    )
    processes.append(process)
    process.wait_for_log("sender assigned", timeout=60)
    return process


def sms_command(number: str, *, dispatch: uuid.UUID | None = None, step: int = 0) -> SendMessage:
    return SendMessage(
        event_id=uuid.uuid4(),
        dispatch_uuid=dispatch or uuid.uuid4(),
        application_id="app-1",
        step=step,
        message={
            "from": {"type": "sms", "number": "447700900999"},
            "to": {"type": "sms", "number": number},
            "message": {"content": {"type": "text", "text": "Your code is 1234"}},
        },
    )


async def send_commands(settings: KafkaSettings, commands: list[SendMessage]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        for command in commands:
            await producer.send_and_wait(
                settings.topics.send, encode(command), key=str(command.dispatch_uuid).encode()
            )
    finally:
        await producer.stop()


async def simulator_sends(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{base_url}/_sim/sends")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def attempts(base_url: str, client_ref: str) -> int:
    """How many times the provider was called for ``client_ref``."""
    return int((await simulator_sends(base_url))["attempts"].get(client_ref, 0))


def decoded(records: list[ConsumerRecord]) -> list[tuple[int, DispatchEvent]]:
    """(partition, event) of every dispatch event among ``records``."""
    out: list[tuple[int, DispatchEvent]] = []
    for record in records:
        event = decode_event(record.value)
        if isinstance(event, DispatchEvent):
            out.append((record.partition, event))
    return out


@contextlib.asynccontextmanager
async def inbound_server(
    settings: KafkaSettings, *, signature_secret: str = ""
) -> AsyncIterator[tuple[str, None]]:
    """A real uvicorn server on a free port hosting only the inbound routes."""
    producer = make_producer(settings)
    await producer.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(producer.stop)
        deps = await stack.enter_async_context(
            # Every status the simulator posts names its client_ref: no
            # read side is asked (the address below answers nothing).
            inbound_deps(
                settings,
                producer,
                f"http://127.0.0.1:{free_port()}",
                InboundSettings(
                    signature_secret=signature_secret, allow_unsigned=not signature_secret
                ),
            )
        )
        async with _serve(Starlette(routes=inbound_routes(deps))) as url:
            yield url, None


@contextlib.asynccontextmanager
async def _serve(app: Starlette) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):  # uvicorn offers no event to wait on
            if server.started:
                break
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
