"""The gateway's Starlette application: ``POST /v0.1/dispatch``, health,
readiness, metrics and the OpenAPI document.

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

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from events.dispatch import WorkflowRequested
from services.gateway.auth import Applications
from services.gateway.body import BodyTooLarge, read_body
from services.gateway.caller import identify
from services.gateway.event_log import EventLog, EventLogUnavailable
from services.gateway.idempotency import (
    FirstAttemptFailed,
    IdempotencyCache,
    KeyReused,
    keyed_dispatch_uuid,
    request_hash,
    valid_key,
)
from services.gateway.json_limits import json_limit_problems
from services.gateway.metrics import RequestMetrics
from services.gateway.problems import ProblemResponse, problem_response
from services.gateway.rate_limit import RateLimiter, retry_after_header
from services.gateway.settings import GatewaySettings
from services.gateway.validation import validate_dispatch
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


def _is_json(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == "application/json"


def _deps(request: Request) -> GatewayDeps:
    deps: GatewayDeps = request.app.state.deps
    return deps


async def post_dispatch(request: Request) -> Response:
    deps = _deps(request)
    instance = request.url.path
    caller = identify(request, deps.applications, jwt_leeway_s=deps.settings.jwt_leeway_s)
    if isinstance(caller, Response):
        return caller
    application_id = caller.application.application_id

    wait = deps.rate_limiter.acquire(application_id)
    if wait is not None:
        return problem_response(
            429,
            f"rate limit of {deps.settings.rate_limit_per_s:g} requests/s exceeded",
            headers={"Retry-After": retry_after_header(wait)},
        )
    if not _is_json(request.headers.get("content-type")):
        return problem_response(415, "send the dispatch as Content-Type: application/json")
    try:
        raw = await read_body(request, deps.settings.max_body_bytes)
    except BodyTooLarge:
        return problem_response(
            413, f"the body is larger than {deps.settings.max_body_bytes} bytes"
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return problem_response(400, f"the body is not valid JSON: {exc}")
    beyond_limits = json_limit_problems(body, raw)
    if beyond_limits:
        return problem_response(
            422, "Your request parameters did not validate.", invalid_parameters=beyond_limits
        )

    key = request.headers.get("idempotency-key")
    if key is not None and not valid_key(key):
        return problem_response(
            422,
            "Your request parameters did not validate.",
            invalid_parameters=[
                {
                    "name": "Idempotency-Key",
                    "reason": "must be 1 to 255 visible ASCII characters",
                }
            ],
        )
    result = validate_dispatch(body)
    if isinstance(result, list):
        return problem_response(
            422,
            "Your request parameters did not validate.",
            invalid_parameters=[p.as_dict() for p in result],
        )
    # The models are strict and refuse unknown fields, so the validated body
    # *is* the workflow as sent: no need to dump the models back (this path
    # carries the gateway's throughput target).
    workflow: list[dict[str, Any]] = body["workflow"]
    if key is None:
        event = WorkflowRequested(
            dispatch_uuid=uuid.uuid4(), application_id=application_id, workflow=workflow
        )
        outcome = await _append(deps, event)
        return outcome or _accepted(event.dispatch_uuid)

    body_hash = request_hash(
        orjson.dumps(
            {"template": result.template, "workflow": workflow}, option=orjson.OPT_SORT_KEYS
        )
    )
    event = WorkflowRequested(
        dispatch_uuid=keyed_dispatch_uuid(application_id, key),
        application_id=application_id,
        workflow=workflow,
        idempotency_key=key,
        request_hash=body_hash,
    )
    try:
        await deps.idempotency.run_once(
            application_id, key, body_hash, lambda: deps.event_log.append(event)
        )
    except KeyReused:
        return problem_response(
            422,
            "This Idempotency-Key was already used with a different request body.",
            invalid_parameters=[
                {"name": "Idempotency-Key", "reason": "already used with a different body"}
            ],
            instance=instance,
        )
    except (EventLogUnavailable, FirstAttemptFailed) as exc:
        return _unavailable(exc)
    return _accepted(event.dispatch_uuid)


async def _append(deps: GatewayDeps, event: WorkflowRequested) -> Response | None:
    try:
        await deps.event_log.append(event)
    except EventLogUnavailable as exc:
        return _unavailable(exc)
    return None


def _unavailable(exc: Exception) -> Response:
    log.warning("dispatch not accepted, Kafka did not acknowledge: %s", exc)
    return problem_response(
        503,
        "The event log did not acknowledge the dispatch in time; nothing was accepted. "
        "Retry later (with the same Idempotency-Key to stay safe).",
        headers={"Retry-After": "1"},
    )


def _accepted(dispatch_uuid: uuid.UUID) -> Response:
    return Response(
        orjson.dumps({"dispatch_uuid": str(dispatch_uuid)}),
        status_code=202,
        media_type="application/json",
    )


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


def core_routes() -> list[BaseRoute]:
    return [
        Route("/v0.1/dispatch", post_dispatch, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]


def create_app(
    deps: GatewayDeps, *, extra_routes: Sequence[BaseRoute] = (), **kwargs: Any
) -> Starlette:
    """The gateway. ``kwargs`` go to Starlette (e.g. ``lifespan``)."""
    app = Starlette(
        routes=[*core_routes(), *extra_routes],
        exception_handlers={HTTPException: _http_problem, Exception: _unexpected},
        **kwargs,
    )
    app.state.deps = deps
    app.state.openapi = OPENAPI_PATH.read_bytes()
    app.add_middleware(RequestMetrics)
    return app
