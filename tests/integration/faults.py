"""A provider that misbehaves for a while: a small HTTP proxy between the
sender and the simulator (the sender's ``PROVIDER_BASE_URL`` points at it).

- ``normal``: every send passes through to the simulator, answered as it answers.
- ``unavailable``: every send is answered 503 at once and never reaches the
  simulator (a provider that is down behind its load balancer).
- ``slow``: every send reaches the simulator, but an accepted one (2xx) is
  answered only after ``slow_s``, past the sender's read timeout: the sender
  cannot know it was accepted, and the statuses the simulator posts (naming
  its ``client_ref``) are what resolve it. A refusal still comes back at once.

A proxy rather than a mode of the simulator: the simulator's counts of what
it accepted per ``client_ref`` (how double sends are found) must go on
through the fault, and a provider outage is outside the simulator's script.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.processes import free_port

Mode = Literal["normal", "unavailable", "slow"]


@dataclass
class ProviderFaults:
    upstream: str
    port: int = field(default_factory=free_port)
    mode: Mode = "normal"
    slow_s: float = 8.0
    answered: Counter[str] = field(default_factory=Counter)  # by mode

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self, client: httpx.AsyncClient) -> Starlette:
        async def send(request: Request) -> Response:
            mode = self.mode
            self.answered[mode] += 1
            if mode == "unavailable":
                return Response(
                    b'{"title": "Service unavailable"}',
                    status_code=503,
                    media_type="application/problem+json",
                )
            headers = {
                k: v
                for k, v in request.headers.items()
                if k.lower() in {"authorization", "content-type"}
            }
            upstream = await client.post(
                f"{self.upstream}/v0.1/messages", content=await request.body(), headers=headers
            )
            if mode == "slow" and upstream.is_success:
                await asyncio.sleep(self.slow_s)
            return Response(
                upstream.content,
                status_code=upstream.status_code,
                media_type=upstream.headers.get("content-type"),
            )

        return Starlette(routes=[Route("/v0.1/messages", send, methods=["POST"])])


@contextlib.asynccontextmanager
async def serve_provider_faults(faults: ProviderFaults) -> AsyncIterator[ProviderFaults]:
    async with httpx.AsyncClient(timeout=30) as client:
        server = uvicorn.Server(
            uvicorn.Config(
                faults.app(client), host="127.0.0.1", port=faults.port, log_level="critical"
            )
        )
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
            await asyncio.sleep(0.02)
        try:
            yield faults
        finally:
            server.should_exit = True
            await task
