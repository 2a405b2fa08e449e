"""A Kafka outage, as the gateway sees it: 503 within the bound, and the refused
dispatch never reaches the log, not even after the broker is back.

The shared broker cannot be stopped, so the gateway reaches it through a small
TCP proxy (below) that the test stops and restarts. Kafka clients connect to
the addresses the broker advertises in its metadata, so the proxy rewrites
Metadata responses to advertise itself; every byte the gateway exchanges with
Kafka then flows through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.protocol import metadata

from events.codec import decode_event
from services.kafka import KafkaSettings
from tests.integration.test_gateway_support import basic_auth, create_app, start_gateway
from tests.kafka_helpers import read_records
from tests.processes import Process, free_port
from tests.unit.gateway.fakes import valid_dispatch

pytestmark = pytest.mark.kafka

METADATA_API_KEY = 3
METADATA_RESPONSES = {
    cls.API_VERSION: cls
    for cls in vars(metadata).values()
    if isinstance(cls, type) and cls.__name__.startswith("MetadataResponse_v")
}


class KafkaProxy:
    """Forwards Kafka connections to one broker, advertising itself instead.

    Runs its own event loop in a thread, so the test can block freely."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, broker_w}
        pending: dict[int, tuple[int, int]] = {}
        pumps = [
            asyncio.create_task(self._requests(client_r, broker_w, pending)),
            asyncio.create_task(self._responses(broker_r, client_w, pending)),
        ]
        # Either side closing ends the connection on both sides.
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
        for writer in (client_w, broker_w):
            writer.transport.abort()
            self._writers.discard(writer)

    @staticmethod
    async def _frame(reader: asyncio.StreamReader) -> bytes:
        size = struct.unpack(">i", await reader.readexactly(4))[0]
        return await reader.readexactly(size)

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: dict[int, tuple[int, int]],
    ) -> None:
        while True:
            frame = await self._frame(reader)
            api_key, version, correlation_id = struct.unpack(">hhi", frame[:8])
            pending[correlation_id] = (api_key, version)
            writer.write(struct.pack(">i", len(frame)) + frame)
            await writer.drain()

    async def _responses(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        pending: dict[int, tuple[int, int]],
    ) -> None:
        while True:
            frame = await self._frame(reader)
            correlation_id = struct.unpack(">i", frame[:4])[0]
            api_key, version = pending.pop(correlation_id, (-1, -1))
            if api_key == METADATA_API_KEY:
                frame = frame[:4] + self._advertise_self(version, frame[4:])
            writer.write(struct.pack(">i", len(frame)) + frame)
            await writer.drain()

    def _advertise_self(self, version: int, body: bytes) -> bytes:
        response = METADATA_RESPONSES[version].decode(BytesIO(body))
        response.brokers = [
            (broker[0], "127.0.0.1", self.port, *broker[3:]) for broker in response.brokers
        ]
        encoded: bytes = response.encode()
        return encoded


@pytest.fixture
def proxy(kafka_settings: KafkaSettings) -> Iterator[KafkaProxy]:
    made = KafkaProxy(kafka_settings.bootstrap_servers)
    made.start()
    yield made
    made.close()


def post(base_url: str, app: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{base_url}/v0.1/dispatch",
        content=orjson.dumps(valid_dispatch()),
        headers={"Content-Type": "application/json", "Authorization": basic_auth(app)},
        timeout=30,
    )


def wait_status(url: str, status: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(url, timeout=10).status_code == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s")


async def test_broker_outage_is_a_503_and_the_refused_dispatch_never_appears(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path, proxy: KafkaProxy
) -> None:
    app = create_app(kafka_settings)
    gateway, base_url = start_gateway(
        kafka_settings,
        tmp_path,
        bootstrap=f"127.0.0.1:{proxy.port}",
        GATEWAY_PRODUCE_TIMEOUT_S="2",
    )
    processes.append(gateway)
    wait_status(f"{base_url}/readyz", 200)
    before = post(base_url, app)
    assert before.status_code == 202, before.text

    proxy.stop()
    started = time.monotonic()
    during = post(base_url, app)
    assert during.status_code == 503, during.text
    assert during.headers["content-type"] == "application/problem+json"
    assert time.monotonic() - started < 4  # the 2 s bound, not a hang
    wait_status(f"{base_url}/readyz", 503)

    proxy.start()
    wait_status(f"{base_url}/readyz", 200)
    after = post(base_url, app)
    assert after.status_code == 202, after.text

    # Give a lingering retry of the refused record every chance to show up.
    records = await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda r: len(r) > 2, timeout=8
    )
    accepted = {before.json()["dispatch_uuid"], after.json()["dispatch_uuid"]}
    assert {str(decode_event(r.value).dispatch_uuid) for r in records} == accepted  # type: ignore[union-attr]
    assert len(records) == 2
