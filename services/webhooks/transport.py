"""One webhook POST: explicit timeouts, response body read with a size cap.

Two interchangeable clients: httpx (the project's HTTP client, the default) and
aiohttp (already installed with faust), chosen by ``WEBHOOK_HTTP_CLIENT``.
Measured here, aiohttp sustains several times httpx's request rate; see
docs/webhooks.md.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Protocol

import aiohttp
import httpx

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
    if config.http_client == "aiohttp":
        return AiohttpTransport(config)
    if not config.allow_private:
        # httpx resolves names itself, after (and apart from) the address
        # check: a name rebound to a private address in between would be
        # reached. aiohttp connects through the checking resolver.
        raise ValueError(
            "WEBHOOK_HTTP_CLIENT=httpx cannot pin the checked address; use aiohttp "
            "(the default) unless WEBHOOK_ALLOW_PRIVATE=1"
        )
    return HttpxTransport(config)


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


class HttpxTransport:
    def __init__(self, config: WebhookSettings) -> None:
        self._config = config
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=config.connect_timeout_s,
                read=config.read_timeout_s,
                write=config.read_timeout_s,
                pool=config.connect_timeout_s,
            ),
            # No global connection cap: it would let one dead receiver's hanging
            # connections starve the others. Concurrency is bounded per endpoint.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
            follow_redirects=False,  # a redirect could point anywhere, past the address check
            trust_env=False,
        )

    async def post(
        self, url: str, body: bytes, headers: dict[str, str], *, now: float
    ) -> AttemptResult:
        budget = _budget(self._config)
        try:
            async with asyncio.timeout(budget):
                return await self._post(url, body, headers, now=now)
        except TimeoutError:
            return AttemptResult(None, error=f"timed out after {budget:.1f} s")
        except httpx.TimeoutException as exc:
            return AttemptResult(None, error=f"timeout: {type(exc).__name__}")
        except (httpx.HTTPError, OSError) as exc:
            return AttemptResult(None, error=f"network error: {type(exc).__name__}: {exc}")

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], *, now: float
    ) -> AttemptResult:
        cap = self._config.max_response_bytes
        async with self._client.stream("POST", url, content=body, headers=headers) as response:
            received = bytearray()
            async for chunk in response.aiter_raw():
                received.extend(chunk)
                if len(received) >= cap:
                    break  # the rest is not ours to read; closing the stream drops it
            return AttemptResult(
                response.status_code,
                retry_after_s=parse_retry_after(response.headers.get("retry-after"), now),
                body_excerpt=_excerpt(response.status_code, bytes(received[:cap])),
            )

    async def aclose(self) -> None:
        await self._client.aclose()


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
            return AttemptResult(None, error="timeout")
        except (aiohttp.ClientError, OSError) as exc:
            return AttemptResult(None, error=f"network error: {type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
