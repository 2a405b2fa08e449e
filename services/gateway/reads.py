"""Read endpoints: a dispatch's state and its ordered history.

``GET /v0.1/dispatch/{uuid}``, ``GET /workflows/{uuid}`` (the ``href`` every
callback carries) and ``GET /v0.1/dispatch/{uuid}/events``. Authenticated like
POST; a dispatch is visible only to the application that created it — any
other caller gets the same 404 as for a dispatch that does not exist, so ids
of other applications cannot be probed. The data comes from the projector.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.gateway.auth import Applications
from services.gateway.bearer import DEFAULT_LEEWAY_S
from services.gateway.caller import identify
from services.gateway.problems import problem_response

log = logging.getLogger(__name__)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ProjectorUnavailable(Exception):
    pass


@dataclass
class ProjectorClient:
    """The projector's internal read API, with explicit timeouts."""

    base_url: str
    timeout_s: float = 5.0
    # A dispatch accepted a moment ago may not be projected yet: a miss is
    # retried for this long before it counts as "no such dispatch".
    fresh_wait_s: float = 1.5
    transport: httpx.AsyncBaseTransport | None = None  # tests pass an in-process one
    # DISPATCH_INTERNAL_TOKEN: the projector requires it when not on loopback.
    token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self.timeout_s,
            transport=self.transport,
            headers=headers,
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def get(self, path: str) -> dict[str, Any] | None:
        deadline = asyncio.get_running_loop().time() + self.fresh_wait_s
        while True:
            try:
                response = await self._client.get(path)
            except httpx.HTTPError as exc:
                raise ProjectorUnavailable(str(exc)) from exc
            if response.status_code == 200:
                found: dict[str, Any] = response.json()
                return found
            if response.status_code != 404:
                raise ProjectorUnavailable(f"projector answered {response.status_code}")
            if asyncio.get_running_loop().time() >= deadline:
                return None
            await asyncio.sleep(0.1)


def read_routes(
    applications: Applications,
    projector: ProjectorClient,
    *,
    jwt_leeway_s: float = DEFAULT_LEEWAY_S,
) -> list[Route]:
    def caller(request: Request) -> str | Response:
        found = identify(request, applications, jwt_leeway_s=jwt_leeway_s)
        return found if isinstance(found, Response) else found.application.application_id

    async def owned(request: Request, path: str) -> dict[str, Any] | Response:
        who = caller(request)
        if isinstance(who, Response):
            return who
        raw = request.path_params["dispatch_uuid"]
        not_found = problem_response(404, f"no dispatch {raw}")
        try:
            dispatch_uuid = str(uuid.UUID(raw))
        except ValueError:
            return not_found
        try:
            found = await projector.get(path.format(dispatch_uuid))
        except ProjectorUnavailable as exc:
            log.warning("projector unavailable: %s", exc)
            return problem_response(503, "Reads are unavailable right now; try again shortly.")
        if found is None or found.get("application_id") != who:
            return not_found
        return found

    async def get_dispatch(request: Request) -> Response:
        found = await owned(request, "/internal/dispatches/{}")
        if isinstance(found, Response):
            return found
        uuid_ = found["dispatch_uuid"]
        links = {
            "self": {"href": f"/v0.1/dispatch/{uuid_}"},
            "events": {"href": f"/v0.1/dispatch/{uuid_}/events"},
        }
        return JSONResponse({**found, "_links": links})

    async def get_events(request: Request) -> Response:
        found = await owned(request, "/internal/dispatches/{}/events")
        if isinstance(found, Response):
            return found
        return JSONResponse(found)

    return [
        Route("/v0.1/dispatch/{dispatch_uuid}", get_dispatch, methods=["GET"]),
        Route("/v0.1/dispatch/{dispatch_uuid}/events", get_events, methods=["GET"]),
        Route("/workflows/{dispatch_uuid}", get_dispatch, methods=["GET"]),
    ]
