"""The read endpoints: authenticated, visible only to the owner, problem+json
for every refusal, 503 (not 500) when the projector cannot be reached."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.gateway.reads import ProjectorClient, read_routes
from tests.unit.gateway.fakes import FakeRegistry, basic, make_app

OWNED = str(uuid.uuid4())
VIEW: dict[str, Any] = {"dispatch_uuid": OWNED, "application_id": "app-1", "status": "completed"}


def fake_projector(up: bool = True) -> Starlette:
    async def view(request: Request) -> Response:
        if not up:
            return Response(status_code=500)
        if request.path_params["uuid"] == OWNED:
            return JSONResponse(VIEW)
        return JSONResponse({"error": "not found"}, status_code=404)

    async def events(request: Request) -> Response:
        if request.path_params["uuid"] == OWNED:
            return JSONResponse({"dispatch_uuid": OWNED, "application_id": "app-1", "events": []})
        return JSONResponse({"error": "not found"}, status_code=404)

    return Starlette(
        routes=[
            Route("/internal/dispatches/{uuid}", view),
            Route("/internal/dispatches/{uuid}/events", events),
        ]
    )


def gateway(up: bool = True) -> httpx.AsyncClient:
    registry = FakeRegistry(make_app("app-1"), make_app("app-2", api_key="key-2"))
    projector = ProjectorClient(
        "http://projector", fresh_wait_s=0.05, transport=httpx.ASGITransport(app=fake_projector(up))
    )
    app = Starlette(routes=read_routes(registry, projector))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_the_owner_sees_its_dispatch_by_both_paths_and_its_history() -> None:
    async with gateway() as client:
        for path in (f"/v0.1/dispatch/{OWNED}", f"/workflows/{OWNED}"):
            response = await client.get(path, headers={"Authorization": basic()})
            assert response.status_code == 200
            body = response.json()
            assert body["status"] == "completed"
            assert body["_links"]["events"]["href"] == f"/v0.1/dispatch/{OWNED}/events"
        history = await client.get(
            f"/v0.1/dispatch/{OWNED}/events", headers={"Authorization": basic()}
        )
        assert history.status_code == 200 and history.json()["events"] == []


@pytest.mark.parametrize(
    ("path", "authorization", "status"),
    [
        (f"/v0.1/dispatch/{OWNED}", None, 401),
        (f"/v0.1/dispatch/{OWNED}", "Basic bm9wZTpub3Bl", 401),
        (f"/v0.1/dispatch/{OWNED}", basic("key-2"), 404),  # another application's dispatch
        (f"/v0.1/dispatch/{uuid.uuid4()}", basic(), 404),
        ("/v0.1/dispatch/not-a-uuid", basic(), 404),
        (f"/v0.1/dispatch/{OWNED}/events", basic("key-2"), 404),
    ],
)
async def test_refusals_are_problems(path: str, authorization: str | None, status: int) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    async with gateway() as client:
        response = await client.get(path, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    if status == 401:
        assert "Basic" in response.headers["www-authenticate"]


async def test_an_unreachable_projector_is_a_503_not_a_500() -> None:
    async with gateway(up=False) as client:
        response = await client.get(f"/v0.1/dispatch/{OWNED}", headers={"Authorization": basic()})
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
