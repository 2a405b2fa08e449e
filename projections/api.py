"""The projector's internal read API (not exposed to clients: the gateway
authenticates callers and asks here). Plain JSON over HTTP so any number of
gateway instances can share one projector, or each host run its own."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from projections.store import HistoryRow, ProjectionStore
from projections.view import public

log = logging.getLogger(__name__)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def history_entry(row: HistoryRow) -> dict[str, Any]:
    return {
        "partition": row.partition,
        "offset": row.offset,
        "type": row.type,
        "occurred_at": row.occurred_at,
        "event": orjson.loads(row.event),
    }


def create_api(store: ProjectionStore, ready: Any) -> Starlette:
    async def get_view(request: Request) -> Response:
        view = await store.view(request.path_params["dispatch_uuid"])
        if view is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(public(view))

    async def get_history(request: Request) -> Response:
        uuid = request.path_params["dispatch_uuid"]
        view = await store.view(uuid)
        if view is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        events = [history_entry(row) for row in await store.history(uuid)]
        return JSONResponse(
            {"dispatch_uuid": uuid, "application_id": view["application_id"], "events": events}
        )

    async def get_message(request: Request) -> Response:
        found = await store.message(request.path_params["message_uuid"])
        if found is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse({"dispatch_uuid": found[0], "step": found[1]})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if ready.is_set():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "catching up"}, status_code=503)

    async def store_unavailable(request: Request, exc: Exception) -> Response:
        # The gateway turns any answer but 200/404 into its own 503; say why here.
        log.warning("read of %s failed: %s", request.url.path, exc)
        return JSONResponse({"error": "projection store unavailable"}, status_code=503)

    return Starlette(
        exception_handlers={
            OSError: store_unavailable,  # connection refused or reset
            TimeoutError: store_unavailable,
            asyncpg.PostgresError: store_unavailable,
            asyncpg.InterfaceError: store_unavailable,
            sqlite3.Error: store_unavailable,
        },
        routes=[
            Route("/internal/dispatches/{dispatch_uuid}", get_view),
            Route("/internal/dispatches/{dispatch_uuid}/events", get_history),
            Route("/internal/messages/{message_uuid}", get_message),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
    )
