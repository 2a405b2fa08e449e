"""Webhooks go only to public http(s) destinations unless private ones are allowed."""

from __future__ import annotations

import pytest

from services.webhooks.safety import DestinationGuard, UnsafeDestination, endpoint_of, is_public


class FakeResolver:
    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.answers:
            raise OSError("no such host")
        return self.answers[host]


RESOLVER = FakeResolver(
    {
        "hooks.example.com": ["93.184.216.34"],
        "internal.example.com": ["10.0.0.7"],
        "sneaky.example.com": ["93.184.216.34", "127.0.0.1"],
        "metadata.example.com": ["169.254.169.254"],
        "v6.example.com": ["::ffff:192.168.1.1"],
    }
)


@pytest.mark.parametrize(
    "url",
    [
        "http://internal.example.com/hook",
        "https://sneaky.example.com/hook",
        "http://metadata.example.com/latest",
        "http://v6.example.com/",
        "http://127.0.0.1:8080/hook",
        "http://[::1]/hook",
    ],
)
async def test_non_public_destinations_are_refused(url: str) -> None:
    guard = DestinationGuard(allow_private=False, resolver=RESOLVER)
    with pytest.raises(UnsafeDestination, match="non-public"):
        await guard.check(url)


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "file:///etc/passwd", "hooks"])
async def test_only_http_and_https_urls_are_accepted(url: str) -> None:
    guard = DestinationGuard(allow_private=True, resolver=RESOLVER)
    with pytest.raises(UnsafeDestination, match="http or https"):
        await guard.check(url)


async def test_public_destinations_pass_and_private_ones_when_allowed() -> None:
    await DestinationGuard(allow_private=False, resolver=RESOLVER).check(
        "https://hooks.example.com/status"
    )
    await DestinationGuard(allow_private=True, resolver=RESOLVER).check("http://127.0.0.1:9/x")


async def test_verdicts_are_cached_and_lookup_failures_are_network_errors() -> None:
    resolver = FakeResolver({"hooks.example.com": ["93.184.216.34"]})
    guard = DestinationGuard(allow_private=False, resolver=resolver)
    for _ in range(3):
        await guard.check("https://hooks.example.com/status")
    assert resolver.lookups == ["hooks.example.com"]
    with pytest.raises(ConnectionError):
        await guard.check("https://gone.example.com/status")


def test_endpoints_are_scheme_host_and_port() -> None:
    assert endpoint_of("https://Hooks.example.com/a?b=1") == "https://hooks.example.com:443"
    assert endpoint_of("http://hooks.example.com:8080/a") == "http://hooks.example.com:8080"
    assert endpoint_of("http://hooks.example.com/a") != endpoint_of("https://hooks.example.com/a")
    assert not is_public("192.168.0.1") and is_public("8.8.8.8")


@pytest.mark.parametrize(
    "address",
    [
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a00:1",  # IPv4-compatible 10.0.0.1
        "64:ff9b::7f00:1",  # NAT64 (well-known prefix) of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254, the cloud metadata service
        "64:ff9b:1::a00:1",  # NAT64 local-use prefix
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:1::1",  # 6to4 of 192.168.0.1
        "::ffff:10.0.0.1",  # IPv4-mapped
    ],
)
def test_ipv6_forms_of_private_ipv4_addresses_are_not_public(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize(
    "address", ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "2606:4700::1111"]
)
def test_ipv6_forms_of_public_addresses_stay_public(address: str) -> None:
    assert is_public(address)
