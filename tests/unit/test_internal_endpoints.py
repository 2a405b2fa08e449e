"""The gateway's /metrics is for the deployment: open on loopback, behind
DISPATCH_INTERNAL_TOKEN otherwise (refused to everyone without one); the
metrics server of the other processes checks the same token."""

from __future__ import annotations

import httpx
import pytest

from services.gateway.app import GatewayDeps, create_app
from services.gateway.settings import GatewaySettings
from services.internal_endpoints import InternalTokenMissing, serve_metrics, token_for
from tests.processes import free_port
from tests.unit.gateway.fakes import FakeEventLog, FakeRegistry

TOKEN = "an-internal-token-of-at-least-32-bytes"


async def _metrics_status(settings: GatewaySettings, authorization: str | None) -> int:
    deps = GatewayDeps(settings=settings, applications=FakeRegistry(), event_log=FakeEventLog())
    transport = httpx.ASGITransport(app=create_app(deps))
    headers = {"Authorization": authorization} if authorization else {}
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return (await client.get("/metrics", headers=headers)).status_code


async def test_gateway_metrics_beyond_loopback_need_the_token() -> None:
    public = GatewaySettings(host="0.0.0.0", internal_token=TOKEN)
    assert await _metrics_status(public, None) == 401
    assert await _metrics_status(public, "Bearer nope") == 401
    assert await _metrics_status(public, f"Bearer {TOKEN}") == 200
    # Without a token configured nobody reads them there.
    assert await _metrics_status(GatewaySettings(host="0.0.0.0"), None) == 401
    assert await _metrics_status(GatewaySettings(host="127.0.0.1"), None) == 200


def test_binding_beyond_loopback_without_a_token_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DISPATCH_INTERNAL_TOKEN", raising=False)
    monkeypatch.delenv("DISPATCH_INTERNAL_TOKEN_FILE", raising=False)
    assert token_for("127.0.0.1", "x") == ""
    with pytest.raises(InternalTokenMissing, match="DISPATCH_INTERNAL_TOKEN"):
        token_for("0.0.0.0", "x")


def test_the_metrics_server_checks_the_token() -> None:
    port = free_port()
    server = serve_metrics(port, "127.0.0.1", TOKEN)
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        ok = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert ok.status_code == 200 and "python_info" in ok.text
    finally:
        server.shutdown()
        server.server_close()
