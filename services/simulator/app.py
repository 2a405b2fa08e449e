"""The simulator's HTTP surface: ``POST /v0.1/messages`` as the Messages API
answers it, status callbacks posted in the background, and ``GET /_sim/sends``
(attempts and accepted sends per ``client_ref``) so tests can prove that no
step is ever sent twice."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from events.codec import from_json, to_json
from services.payload_signature import sign
from services.simulator.config import SimulatorConfig
from services.simulator.rules import (
    Accepted,
    Refused,
    Rules,
    ScriptedStatus,
    Unavailable,
    channel_of,
    decide,
    recipient_of,
)

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://developer.nexmo.com/api-errors/messages-olympus#"


def _problem(status: int, title: str, detail: str, code: int | None = None) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (str(code) if code is not None else str(status)),
        "title": title,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if code is not None:
        body["code"] = code
    return Response(to_json(body), status_code=status, media_type="application/problem+json")


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Simulator:
    def __init__(self, config: SimulatorConfig, rules: Rules) -> None:
        self.config = config
        self.rules = rules
        self.attempts: Counter[str] = Counter()
        self.accepted: Counter[str] = Counter()
        # Wall-clock arrival of each client_ref's first attempt (benchmarks
        # measure "request accepted → provider called" with it).
        self.first_attempt_at: dict[str, float] = {}
        self.callbacks_posted = 0
        self._random = random.Random(config.seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: aiohttp.ClientSession | None = None

    # -- lifecycle ---------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        # aiohttp: at hundreds of callbacks per second httpx's pool costs more
        # CPU than the rest of the simulator (measured by the e2e benchmark).
        timeout = aiohttp.ClientTimeout(total=self.config.callback_timeout_s, connect=2.0)
        async with aiohttp.ClientSession(timeout=timeout) as client:
            self._client = client
            try:
                yield
            finally:
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- handlers ----------------------------------------------------------------
    async def send(self, request: Request) -> Response:
        if not self._authorised(request.headers.get("authorization")):
            return _problem(401, "Unauthorized", "You did not provide correct credentials.")
        try:
            raw = await request.body()
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening any more
        try:
            message = from_json(raw)
        except ValueError:
            return _problem(400, "Malformed request", "The body is not JSON.")
        if not isinstance(message, dict) or not isinstance(message.get("to"), dict):
            return _problem(422, "Invalid params", "The message has no 'to' object.", 1020)
        client_ref = str(message.get("client_ref") or "")
        # Counted on arrival: a send whose caller vanished still reached the provider.
        self.attempts[client_ref] += 1
        self.first_attempt_at.setdefault(client_ref, time.time())
        script = self.rules.script_for(recipient_of(message))
        delay = self.config.latency_ms / 1000 + script.latency_s / self.config.speed
        if delay > 0:
            await asyncio.sleep(delay)
        decision = decide(script, self.attempts[client_ref])
        if isinstance(decision, Unavailable):
            return _problem(decision.http_status, "Service unavailable", "Try again later.")
        if isinstance(decision, Refused):
            return _problem(decision.http_status, "Invalid params", decision.reason, decision.code)
        self.accepted[client_ref] += 1
        message_uuid = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        self._post_statuses(message_uuid, message, decision)
        return JSONResponse({"message_uuid": message_uuid}, status_code=202)

    async def sends(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "attempts": dict(self.attempts),
                "accepted": dict(self.accepted),
                "first_attempt_at": self.first_attempt_at,
                "callbacks_posted": self.callbacks_posted,
            }
        )

    def _authorised(self, authorization: str | None) -> bool:
        if not self.config.api_key:
            return True
        if not authorization:
            return False
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            return bool(value.strip())
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip()).decode()
        except ValueError:
            return False
        return decoded == f"{self.config.api_key}:{self.config.api_secret}"

    # -- callbacks ---------------------------------------------------------------
    def _post_statuses(self, message_uuid: str, message: dict[str, Any], plan: Accepted) -> None:
        if not self.config.callback_url or not plan.timeline:
            return
        task = asyncio.create_task(self._run_timeline(message_uuid, message, plan.timeline))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_timeline(
        self, message_uuid: str, message: dict[str, Any], timeline: list[ScriptedStatus]
    ) -> None:
        # One task per message posts its statuses in order, as a provider would.
        loop = asyncio.get_running_loop()
        started = loop.time()
        for scripted in sorted(timeline, key=lambda s: s.after_s):
            due = started + scripted.after_s / self.config.speed
            await asyncio.sleep(max(0.0, due - loop.time()))
            await self._post(self._status_body(message_uuid, message, scripted))

    def _status_body(
        self, message_uuid: str, message: dict[str, Any], scripted: ScriptedStatus
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_uuid": message_uuid,
            "to": message.get("to", {}),
            "from": message.get("from", {}),
            "timestamp": _timestamp(),
            "status": scripted.status,
        }
        if message.get("client_ref"):
            body["client_ref"] = message["client_ref"]
        if scripted.error is not None:
            body["error"] = scripted.error.model_dump()
        price = self.rules.price_for(channel_of(message))
        if scripted.status == "delivered" and price is not None:
            body["usage"] = {"currency": "EUR", "price": price}
        return body

    async def _post(self, body: dict[str, Any]) -> None:
        """POST one status, retrying non-2xx answers with backoff (bounded)."""
        assert self._client is not None
        data = to_json(body)
        backoff = 0.2
        for attempt in range(1, self.config.callback_attempts + 1):
            headers = {"content-type": "application/json"}
            if self.config.signature_secret:
                headers["authorization"] = sign(data, self.config.signature_secret)
            try:
                async with self._client.post(
                    self.config.callback_url, data=data, headers=headers
                ) as response:
                    await response.read()
                    if 200 <= response.status < 300:
                        self.callbacks_posted += 1
                        return
                    reason = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            if attempt < self.config.callback_attempts:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
        log.warning("gave up on status %s of %s: %s", body["status"], body["message_uuid"], reason)


def create_app(config: SimulatorConfig, rules: Rules) -> Starlette:
    simulator = Simulator(config, rules)
    app = Starlette(
        routes=[
            Route("/v0.1/messages", simulator.send, methods=["POST"]),
            Route("/_sim/sends", simulator.sends, methods=["GET"]),
        ],
        lifespan=simulator.lifespan,
    )
    app.state.simulator = simulator
    return app
