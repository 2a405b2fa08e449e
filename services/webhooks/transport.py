"""One webhook POST over aiohttp: explicit timeouts (connect, read, and an
overall budget), no redirects followed, the response body read only up to a
cap, and every connection made through the resolver that checks the address
(docs/security.md).

aiohttp, not httpx: it connects to the addresses its resolver returns, so the
address checked is the address reached (httpx resolves again on its own, open
to DNS rebinding), and it sustains several times httpx's request rate here
(docs/webhooks.md).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Protocol

import aiohttp

from services.webhooks.config import WebhookSettings
from services.webhooks.policy import AttemptResult, parse_retry_after
from services.webhooks.resolver import GuardedResolver
from services.webhooks.safety import Resolver, system_resolver


class Transport(Protocol):
    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, now: float
    ) -> AttemptResult: ...

    async def aclose(self) -> None: ...


def make_transport(config: WebhookSettings) -> Transport:
    return AiohttpTransport(config)


def _excerpt(status: int, _received: bytes) -> str:
    """A fixed reason for the status, never the receiver's words: what it
    answered reaches tenant-visible history, and a receiver (or whatever a
    URL points at) must not be able to write into it."""
    if 200 <= status < 300:
        return ""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "unrecognised status"


def _budget(config: WebhookSettings) -> float:
    # Per-operation timeouts do not bound a receiver that trickles bytes
    # forever; this overall budget does.
    return config.connect_timeout_s + 2 * config.read_timeout_s


class AiohttpTransport:
    def __init__(self, config: WebhookSettings, *, lookup: Resolver = system_resolver) -> None:
        self._config = config
        self._lookup = lookup  # tests pass a rebinding DNS
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily: aiohttp wants a running loop.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                # limit=0: no global cap, concurrency is bounded per endpoint.
                connector=aiohttp.TCPConnector(
                    limit=0,
                    # Only checked addresses are cached, and only they are used.
                    use_dns_cache=True,
                    resolver=GuardedResolver(
                        allow_private=self._config.allow_private,
                        lookup=self._lookup,
                        timeout_s=self._config.connect_timeout_s,
                    ),
                ),
                timeout=aiohttp.ClientTimeout(
                    total=_budget(self._config),
                    sock_connect=self._config.connect_timeout_s,
                    sock_read=self._config.read_timeout_s,
                ),
                trust_env=False,
                auto_decompress=False,
            )
        return self._session

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, now: float
    ) -> AttemptResult:
        cap = self._config.max_response_bytes
        try:
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                received = await response.content.read(cap)
                return AttemptResult(
                    response.status,
                    retry_after_s=parse_retry_after(response.headers.get("retry-after"), now),
                    body_excerpt=_excerpt(response.status, received),
                )
        except TimeoutError:
            return AttemptResult(None, error="timed out")
        except (aiohttp.ClientError, OSError) as exc:
            return AttemptResult(None, error=f"network error: {type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
