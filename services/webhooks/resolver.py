"""The deliverer's DNS resolver for aiohttp: it resolves once, checks every
address, and hands the connector only the public ones, so the connection goes
to an address that was checked. A check before the request and a second
lookup by the HTTP client would let a name that answers a public address
first and a private one next (DNS rebinding) reach the internal network."""

from __future__ import annotations

import asyncio
import errno
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

from services.webhooks.safety import Resolver, is_public, system_resolver


class NonPublicDestination(OSError):
    """Every address the name resolved to is non-public."""

    def __init__(self, host: str) -> None:
        # (errno, strerror): aiohttp reports an OSError's strerror.
        super().__init__(errno.EACCES, f"{host} resolves to no public address")


class GuardedResolver(AbstractResolver):
    def __init__(
        self, *, allow_private: bool, lookup: Resolver = system_resolver, timeout_s: float = 5.0
    ) -> None:
        self._allow_private = allow_private
        self._lookup = lookup
        self._timeout_s = timeout_s

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await asyncio.wait_for(self._lookup(host, port), self._timeout_s)
        allowed = [a for a in addresses if self._allow_private or is_public(a)]
        if not allowed:
            raise NonPublicDestination(host)
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in allowed
        ]

    async def close(self) -> None:
        return None
