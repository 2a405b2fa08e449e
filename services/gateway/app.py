"""The gateway's Starlette application: ``POST /v0.1/dispatch``
(:mod:`services.gateway.post_dispatch`), health, readiness, metrics and the
OpenAPI document.

Everything it talks to comes in through :class:`GatewayDeps`, so tests run it
with a fake event log and an in-memory registry. ``extra_routes`` is the seam
for endpoints other modules add (inbound statuses, read endpoints).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Message, Receive, Scope, Send

from services.gateway.auth import Applications
from services.gateway.event_log import EventLog
from services.gateway.idempotency import IdempotencyCache
from services.gateway.metrics import RequestMetrics, count_request
from services.gateway.post_dispatch import PostDispatch
from services.gateway.problems import ProblemResponse, problem_response
from services.gateway.rate_limit import RateLimiter
from services.gateway.settings import GatewaySettings
from services.internal_endpoints import bearer_matches, is_loopback

log = logging.getLogger(__name__)

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


@dataclass
class GatewayDeps:
    settings: GatewaySettings
    applications: Applications
    event_log: EventLog
    rate_limiter: RateLimiter = field(init=False)
    idempotency: IdempotencyCache = field(init=False)

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(
            self.settings.rate_limit_per_s, self.settings.rate_limit_burst
        )
        self.idempotency = IdempotencyCache(self.settings.idempotency_cache_size)


def _deps(request: Request) -> GatewayDeps:
    deps: GatewayDeps = request.app.state.deps
    return deps


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    deps = _deps(request)
    if not deps.applications.loaded:
        return problem_response(503, "the application registry is still loading")
    if not await deps.event_log.reachable():
        return problem_response(503, "Kafka is not reachable")
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    settings = _deps(request).settings
    token = settings.internal_token
    # Metrics are for the deployment, not for clients of the public API.
    guarded = bool(token) or not is_loopback(settings.host)
    if guarded and not (token and bearer_matches(request.headers.get("authorization"), token)):
        return problem_response(
            401,
            "/metrics needs Authorization: Bearer <DISPATCH_INTERNAL_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="internal"'},
        )
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    document: bytes = request.app.state.openapi
    return Response(document, media_type="application/json")


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = {
        404: f"no resource at {request.url.path}",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    return problem_response(exc.status_code, detail, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Logged with its traceback for operators; the client sees no internals.
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return ProblemResponse(
        {
            "type": "https://dispatch.dev/problems/internal-error",
            "title": "Internal error",
            "status": 500,
            "detail": "The server failed to process the request.",
            "instance": uuid.uuid4().hex,
        },
        status_code=500,
    )


DISPATCH_PATH = "/v0.1/dispatch"


class GatewayApp(Starlette):
    """Starlette, with ``POST /v0.1/dispatch`` served ahead of its middleware
    and routing layers, counted and guarded as they would: on this route
    those layers cost a quarter of the app's time per request (bench/RESULTS.md,
    Gateway). Every other request, and this path under a root path, goes
    through Starlette as usual."""

    _post_dispatch = PostDispatch()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != DISPATCH_PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        status = 0

        async def send_and_remember(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._post_dispatch(scope, receive, send_and_remember)
        except Exception as exc:
            if status:
                raise  # the answer has begun: nothing more can be said
            status = 500
            response = await _unexpected(Request(scope), exc)
            await response(scope, receive, send)
        finally:
            count_request(DISPATCH_PATH, "POST", status or 500)


def core_routes() -> list[BaseRoute]:
    return [
        Route(DISPATCH_PATH, PostDispatch(), methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]


def create_app(
    deps: GatewayDeps, *, extra_routes: Sequence[BaseRoute] = (), **kwargs: Any
) -> Starlette:
    """The gateway. ``kwargs`` go to Starlette (e.g. ``lifespan``)."""
    app = GatewayApp(
        routes=[*core_routes(), *extra_routes],
        exception_handlers={HTTPException: _http_problem, Exception: _unexpected},
        **kwargs,
    )
    app.state.deps = deps
    app.state.openapi = OPENAPI_PATH.read_bytes()
    app.add_middleware(RequestMetrics)
    return app
