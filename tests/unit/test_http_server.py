"""The HTTP server every process runs: uvicorn's, waking once a second at rest
and still stopping at once on a signal. A real uvicorn server on a free port."""

from __future__ import annotations

import asyncio
import inspect
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
import uvicorn

from services import http_server


async def hello(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CountingServer(http_server.Server):
    ticks = 0

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)


async def test_it_serves_and_wakes_once_a_second() -> None:
    port = free_port()
    server = CountingServer(uvicorn.Config(hello, port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                if server.started:
                    break
                await asyncio.sleep(0.05)
            response = await client.get(f"http://127.0.0.1:{port}/")
        assert response.text == "hello"
        assert response.headers["date"]  # the tick still refreshes the date header
        ticks_before = server.ticks
        await asyncio.sleep(2.2)
        # uvicorn's own loop would tick 22 times in that time.
        assert server.ticks - ticks_before <= 3
        # Set by code, not by a signal (the projector does): seen within the second.
        server.should_exit = True
        await asyncio.wait_for(serving, 3)
    finally:
        serving.cancel()


SERVE = """
import sys
from services import http_server

async def hello(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})

http_server.run(hello, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def test_a_served_process_stops_at_once_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVE, str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/").text == "hello"
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.05)
        time.sleep(1.5)  # resting: the loop is in its one-second sleep
        asked = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=5)
        assert time.monotonic() - asked < 0.5
    finally:
        process.kill()
        process.wait()


def test_a_port_in_use_exits_as_uvicorn_does() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-c", SERVE, str(port)], capture_output=True, timeout=30
        )
    assert finished.returncode == http_server.STARTUP_FAILURE


def test_the_uvicorn_internals_it_relies_on() -> None:
    # The loop it replaces: ticks 100 ms apart, the date header every tenth.
    loop = inspect.getsource(uvicorn.Server.main_loop)
    assert "await asyncio.sleep(0.1)" in loop and "await self.on_tick(counter)" in loop
    assert "if counter % 10 == 0:" in inspect.getsource(uvicorn.Server.on_tick)
    assert list(inspect.signature(uvicorn.Server.handle_exit).parameters) == [
        "self",
        "sig",
        "frame",
    ]
