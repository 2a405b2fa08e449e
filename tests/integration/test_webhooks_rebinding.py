"""No DNS rebinding: the deliverer connects to the address it checked. Here
the address check's lookup answers a public address (what a rebinding DNS
server answers first) while the name really resolves to loopback, where a
receiver stands in for an internal service: the webhook must not reach it."""

from __future__ import annotations

import pytest

from services.webhooks.config import WebhookSettings
from services.webhooks.safety import DestinationGuard
from services.webhooks.transport import make_transport
from tests.integration.test_webhooks import Receiver


async def first_answer_public(_host: str, _port: int) -> list[str]:
    return ["93.184.215.14"]


@pytest.mark.parametrize("allow_private", [False, True])
async def test_a_name_rebound_to_loopback_after_the_check_is_not_reached(
    allow_private: bool,
) -> None:
    settings = WebhookSettings(connect_timeout_s=1, read_timeout_s=1, allow_private=allow_private)
    guard = DestinationGuard(allow_private=allow_private, resolver=first_answer_public)
    transport = make_transport(settings)  # the deliverer's own
    try:
        async with Receiver() as internal:
            url = f"http://localhost:{internal.port}/admin"
            await guard.check(url)  # passes: the check saw a public address
            result = await transport.post(url, b"{}", {}, now=0)
            if allow_private:  # the same path does reach loopback when allowed
                assert result.http_status == 200
                assert internal.at("/admin")
            else:
                assert result.http_status is None
                assert "no public address" in (result.error or "")
                assert internal.received == []
    finally:
        await transport.aclose()
