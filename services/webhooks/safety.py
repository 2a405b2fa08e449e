"""Refuses webhook destinations that would turn the deliverer into a probe of
the network it runs in: non-http(s) URLs, and hosts that resolve to loopback,
private, link-local or otherwise non-public addresses (unless allowed)."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Awaitable[list[str]]]


class UnsafeDestination(ValueError):
    pass


def endpoint_of(url: str) -> str:
    """``scheme://host:port``: the unit of isolation between receivers."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def check_url(url: str) -> tuple[str, int]:
    """Host and port of a well-formed http(s) URL, or UnsafeDestination."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"malformed URL {url!r}: {exc}") from exc
    if parts.scheme not in {"http", "https"}:
        raise UnsafeDestination(f"URL scheme must be http or https, not {parts.scheme!r}")
    if not parts.hostname:
        raise UnsafeDestination(f"URL {url!r} has no host")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


# IPv6 forms that carry an IPv4 address, which the network may route to it:
# IPv4-compatible (::a.b.c.d, deprecated but still routed by some stacks),
# NAT64's well-known prefix (RFC 6052) and its local-use prefix (RFC 8215,
# refused outright: its embedding depends on the operator's prefix length).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64_WELL_KNOWN or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        found.append(low32)
    return found


def _public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return ip.is_global and not ip.is_multicast


def is_public(address: str) -> bool:
    """Whether ``address`` is a public unicast address, looking through every
    IPv6 form that embeds an IPv4 address (mapped, compatible, NAT64, 6to4,
    Teredo): ``64:ff9b::7f00:1`` reaches 127.0.0.1 through a NAT64 gateway."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64_LOCAL_USE:
            return False
        embedded = _embedded_ipv4(ip)
        if ip.ipv4_mapped is not None:
            return _public_ip(ip.ipv4_mapped)
        if embedded and not all(_public_ip(a) for a in embedded):
            return False
        if ip in _IPV4_COMPATIBLE and int(ip) > 1:
            return True  # judged by its IPv4 address above (::/8 is "reserved")
    return _public_ip(ip)


async def system_resolver(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class DestinationGuard:
    """Checks URLs, caching host verdicts briefly so a busy receiver costs one
    lookup per ``ttl_s`` rather than one per webhook."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        timeout_s: float = 5.0,
        ttl_s: float = 60.0,
    ) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        self._timeout_s = timeout_s
        self._ttl_s = ttl_s
        self._verdicts: dict[tuple[str, int], tuple[float, str | None]] = {}

    async def check(self, url: str) -> None:
        host, port = check_url(url)
        if self._allow_private:
            return
        cached = self._verdicts.get((host, port))
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            refusal = cached[1]
        else:
            refusal = await self._judge(host, port)
            self._verdicts[(host, port)] = (now + self._ttl_s, refusal)
        if refusal is not None:
            raise UnsafeDestination(refusal)

    async def _judge(self, host: str, port: int) -> str | None:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:  # an address literal needs no lookup
            return None if is_public(host) else f"destination {host} is a non-public address"
        try:
            addresses = await asyncio.wait_for(self._resolver(host, port), self._timeout_s)
        except (OSError, TimeoutError) as exc:
            # Not cached as safe: a failed lookup is a network error, retried later.
            raise ConnectionError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise ConnectionError(f"{host} resolves to no address")
        blocked = [a for a in addresses if not is_public(a)]
        if blocked:
            return f"destination {host} resolves to a non-public address ({blocked[0]})"
        return None
