"""The simulator's HTTP answers, through its ASGI app (no callbacks posted)."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from services.simulator.app import create_app
from services.simulator.config import SimulatorConfig
from services.simulator.rules import load_rules


def _client(**config: Any) -> httpx.AsyncClient:
    app = create_app(SimulatorConfig(**config), load_rules(None))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim")


def _sms(number: str, ref: str) -> dict[str, Any]:
    return {
        "from": {"type": "sms", "number": "447700900999"},
        "to": {"type": "sms", "number": number},
        "message": {"content": {"type": "text", "text": "hi"}},
        "client_ref": ref,
    }


async def test_an_accepted_send_answers_202_with_a_message_uuid() -> None:
    async with _client() as client:
        response = await client.post("/v0.1/messages", json=_sms("447700900001", "a"))
        assert response.status_code == 202
        assert len(response.json()["message_uuid"]) == 36


async def test_a_refusal_is_a_422_problem_with_code_and_reason() -> None:
    async with _client() as client:
        response = await client.post("/v0.1/messages", json=_sms("447700900002", "b"))
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"].endswith("#1020")
        assert body["title"] and body["detail"]


async def test_digit_5_answers_503_twice_then_202_and_counts_every_attempt() -> None:
    async with _client() as client:
        codes = [
            (await client.post("/v0.1/messages", json=_sms("447700900005", "c"))).status_code
            for _ in range(3)
        ]
        assert codes == [503, 503, 202]
        sends = (await client.get("/_sim/sends")).json()
        assert sends["attempts"]["c"] == 3
        assert sends["accepted"]["c"] == 1


async def test_the_seed_makes_message_uuids_reproducible() -> None:
    async def uuids(seed: int) -> list[str]:
        async with _client(seed=seed) as client:
            return [
                (await client.post("/v0.1/messages", json=_sms("447700900001", str(i)))).json()[
                    "message_uuid"
                ]
                for i in range(3)
            ]

    assert await uuids(7) == await uuids(7)
    assert await uuids(7) != await uuids(8)


async def test_configured_credentials_are_enforced() -> None:
    async with _client(api_key="key", api_secret="secret") as client:
        denied = await client.post("/v0.1/messages", json=_sms("447700900001", "d"))
        assert denied.status_code == 401
        basic = "Basic " + base64.b64encode(b"key:secret").decode()
        allowed = await client.post(
            "/v0.1/messages", json=_sms("447700900001", "d"), headers={"authorization": basic}
        )
        assert allowed.status_code == 202


async def test_garbage_gets_a_4xx() -> None:
    async with _client() as client:
        assert (await client.post("/v0.1/messages", content=b"{nope")).status_code == 400
        assert (await client.post("/v0.1/messages", json=[1])).status_code == 422
