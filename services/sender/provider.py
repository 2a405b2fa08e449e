"""The Messages API client: one ``POST {base}/v0.1/messages`` per attempt, and
the retry loop that keeps trying transient failures within a time budget."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import aiohttp
import jwt

from events.base import utcnow
from events.codec import from_json, to_json
from services.sender.config import SenderConfig
from services.sender.ledger import Retrying
from services.sender.outcomes import (
    Answer,
    Refused,
    Submitted,
    Transient,
    Unknown,
    backoff_delays,
    classify,
)


class Provider(Protocol):
    async def submit(self, message: dict[str, Any], client_ref: str) -> Answer: ...


class MessagesApiClient:
    """One attempt per call; a shared connection pool for every send.

    aiohttp rather than httpx here: with hundreds of connections in flight
    httpx's pool spends more time on bookkeeping than the calls take (measured
    in bench/bench_sender.py), while aiohttp keeps up with the provider.
    """

    def __init__(self, config: SenderConfig) -> None:
        self._config = config
        self._url = f"{config.provider_base_url}/v0.1/messages"
        self._timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=config.connect_timeout_s,
            sock_read=config.read_timeout_s,
        )
        self._session: aiohttp.ClientSession | None = None
        self._token: tuple[float, str] | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created lazily: a session must be born inside the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._config.concurrency)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def submit(self, message: dict[str, Any], client_ref: str) -> Answer:
        body = {**message, "client_ref": client_ref}
        headers = {"content-type": "application/json", "accept": "application/json"}
        authorization = self._authorization()
        if authorization:
            headers["authorization"] = authorization
        try:
            async with self._open().post(
                self._url, data=to_json(body), headers=headers
            ) as response:
                status = response.status
                content = await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # No connection was made: the request surely never reached the provider.
            return Transient(f"provider unreachable ({type(exc).__name__}: {exc})")
        except (TimeoutError, aiohttp.ClientError) as exc:
            # Sent, then no answer (a read timeout, a cut connection): it may
            # have been accepted, so it is never sent again.
            return Unknown(f"no answer from the provider ({type(exc).__name__}: {exc})")
        try:
            parsed: Any = from_json(content) if content else None
        except ValueError:
            parsed = None
        return classify(status, parsed)

    def _authorization(self) -> str | None:
        config = self._config
        if config.auth == "basic":
            pair = f"{config.api_key}:{config.api_secret}".encode()
            return "Basic " + base64.b64encode(pair).decode()
        if config.auth == "jwt":
            return "Bearer " + self._jwt()
        return None

    def _jwt(self) -> str:
        # An RS256 application token, reused until a minute before it expires.
        now = time.time()
        if self._token is not None and self._token[0] > now + 60:
            return self._token[1]
        expires = now + 900
        claims = {
            "application_id": self._config.application_id,
            "iat": int(now),
            "exp": int(expires),
            "jti": str(uuid.uuid4()),
        }
        token = jwt.encode(claims, self._config.private_key_pem, algorithm="RS256")
        self._token = (expires, token)
        return token


async def submit_with_retries(
    provider: Provider,
    message: dict[str, Any],
    client_ref: str,
    *,
    budget_s: float,
    initial_s: float,
    max_s: float,
    resumed: Retrying | None = None,
    before_attempt: Callable[[int], Awaitable[bool]] | None = None,
    after_refusal: Callable[[int, Transient], Awaitable[None]] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Callable[[], datetime] = utcnow,
) -> Submitted | Refused | Unknown | None:
    """Try until a final answer, or until ``budget_s`` is spent on failures
    that surely were not accepted; then the last of those becomes a refusal.
    An unknown outcome ends the tries at once: another could send it twice.

    ``resumed``: the tries a previous sender made (the budget runs from its
    first). ``before_attempt(n)`` is awaited before call number n and may
    refuse it (None is returned: the command is no longer this sender's);
    ``after_refusal(n, answer)`` after each call surely refused."""
    attempt = 0
    refusal: Transient | None = None
    started = clock()
    if resumed is not None:
        attempt = resumed.attempts
        refusal = Transient(resumed.reason, resumed.http_status)
        started -= max(0.0, (now() - resumed.at).total_seconds())
    delays = backoff_delays(initial_s, max_s)
    while True:
        if refusal is not None:
            remaining = budget_s - (clock() - started)
            if remaining <= 0:
                return Refused(
                    refusal.http_status,
                    None,
                    f"gave up after {attempt} attempts in {budget_s:g} s: {refusal.reason}",
                )
            await sleep(min(delays[min(attempt - 1, len(delays) - 1)], remaining))
        if before_attempt is not None and not await before_attempt(attempt + 1):
            return None
        answer = await provider.submit(message, client_ref)
        attempt += 1
        if not isinstance(answer, Transient):
            return answer
        refusal = answer
        if after_refusal is not None:
            await after_refusal(attempt, answer)
