"""The console's routes: sign-in, overview, dispatch list, one dispatch, and
redelivery of a dispatch's abandoned webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from projections import console_queries as queries
from projections.store import HistoryRow
from services.console import auth, charts
from services.console.figures import FIGURES_TTL_S, FiguresCache, FiguresCollector, Sampler
from services.console.filters import InvalidFilter, parse_filters
from services.console.settings import ConsoleSettings
from services.console.store import StoreMissing, open_console_store
from services.console.timeline import timeline, webhooks
from services.gateway.problems import problem_response
from services.webhooks.cli import _redeliver as redeliver_webhooks

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


def create_app(settings: ConsoleSettings) -> Starlette:
    store = open_console_store(settings.store_url)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.globals["bars"] = charts.bars
    templates.env.globals["sparkline"] = charts.sparkline
    templates.env.filters["urlencode_query"] = urlencode
    # The totals count index entries in proportion to the store (about 0.1 s
    # at a million dispatches): read at most once per few seconds, shared by
    # the overview, /metrics and the sampler.
    figures = FiguresCache(
        lambda: store.read(queries.figures), ttl_s=min(FIGURES_TTL_S, settings.sample_interval_s)
    )
    sampler = Sampler(
        read_figures=figures.get,
        processor_metrics_url=settings.processor_metrics_url,
        interval_s=settings.sample_interval_s,
        internal_token=settings.internal_token,
    )
    registry = CollectorRegistry()
    registry.register(FiguresCollector(figures))

    def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        return templates.TemplateResponse(request, name, context, status_code=status)

    def must_sign_in(request: Request) -> Response | None:
        if auth.signed_in(request, settings.token):
            return None
        if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(
                f"/console/login?{urlencode({'next': request.url.path})}", status_code=303
            )
        return problem_response(401, "Sign in to the console with its operator token.")

    async def login_form(request: Request) -> Response:
        return page(request, "login.html", {"error": None, "next": _safe_next(request)})

    async def login(request: Request) -> Response:
        form = await request.form()
        given = str(form.get("token", ""))
        target = _safe_next(request, str(form.get("next", "")))
        if not given or not auth.token_matches(given, settings.token):
            return page(
                request,
                "login.html",
                {"error": "That token is not the console's.", "next": target},
                401,
            )
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            auth.COOKIE,
            auth.new_session(settings.token),
            max_age=auth.SESSION_S,
            path="/console",
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookie,
        )
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/console")
        return response

    async def overview(request: Request) -> Response:
        if (denied := must_sign_in(request)) is not None:
            return denied
        now = datetime.now(UTC)

        try:
            totals = await figures.get()
            minutes = await store.read(lambda db: queries.per_minute(db, now))
        except StoreMissing:
            return _store_missing()
        latest = sampler.samples[-1] if sampler.samples else {}
        return page(
            request,
            "overview.html",
            {
                "figures": totals,
                "minutes": minutes,
                "levels": {name: sampler.series(name) for name in _LEVELS},
                "lateness_p99": latest.get("lateness_p99"),
                "now": now,
            },
        )

    async def dispatch_list(request: Request) -> Response:
        if (denied := must_sign_in(request)) is not None:
            return denied
        try:
            filters = parse_filters(request.query_params)
        except InvalidFilter as exc:
            return problem_response(
                400,
                f"The filter {exc.name} is not valid.",
                invalid_parameters=[{"name": exc.name, "reason": exc.reason}],
            )
        try:

            async def listing(db: queries.Reader) -> tuple[queries.Page, list[str]]:
                return await queries.list_dispatches(db, filters), await queries.applications(db)

            found, apps = await store.read(listing)
        except StoreMissing:
            return _store_missing()
        kept = {k: v for k, v in request.query_params.items() if k != "before" and v}
        next_link = None
        if found.next_before is not None:
            next_link = "?" + urlencode({**kept, "before": "|".join(found.next_before)})
        return page(
            request,
            "list.html",
            {
                "page": found,
                "filters": filters,
                "params": request.query_params,
                "applications": apps,
                "statuses": queries.STATUSES,
                "channels": queries.CHANNELS,
                "next_link": next_link,
                "first_link": "?" + urlencode(kept) if filters.before else None,
            },
        )

    async def dispatch_page(request: Request) -> Response:
        if (denied := must_sign_in(request)) is not None:
            return denied
        raw = request.path_params["dispatch_uuid"]
        try:
            dispatch_uuid = str(uuid.UUID(raw))
        except ValueError:
            return problem_response(404, f"no dispatch {raw}")
        try:

            async def one(db: queries.Reader) -> tuple[dict[str, Any] | None, list[HistoryRow]]:
                return await queries.view(db, dispatch_uuid), await queries.history(
                    db, dispatch_uuid
                )

            view, rows = await store.read(one)
        except StoreMissing:
            return _store_missing()
        if view is None:
            return problem_response(404, f"no dispatch {dispatch_uuid}")
        entries, request_body = timeline(rows)
        hooks = webhooks(rows)
        return page(
            request,
            "dispatch.html",
            {
                "view": view,
                "entries": entries,
                "request_body": request_body,
                "final_report": {
                    "status": view["status"],
                    "finished_at": view["finished_at"],
                    "usage": view["usage"],
                    **view["final_report"],
                },
                "webhooks": hooks,
                "abandoned": [h for h in hooks if h.abandoned],
                "redelivered": request.query_params.get("redelivered"),
            },
        )

    async def redeliver(request: Request) -> Response:
        if (denied := must_sign_in(request)) is not None:
            return denied
        raw = request.path_params["dispatch_uuid"]
        try:
            dispatch_uuid = uuid.UUID(raw)
        except ValueError:
            return problem_response(404, f"no dispatch {raw}")
        try:
            chosen = await redeliver_webhooks(
                settings.kafka, dispatch=dispatch_uuid, since=None, abandoned=True, dry_run=False
            )
        except KafkaError as exc:
            log.warning("redelivery of %s failed: %s", dispatch_uuid, exc)
            return problem_response(503, "Kafka did not take the redelivery; try again shortly.")
        log.info("operator redelivered %d webhook(s) of %s", len(chosen), dispatch_uuid)
        return RedirectResponse(
            f"/console/dispatches/{dispatch_uuid}?redelivered={len(chosen)}", status_code=303
        )

    async def metrics(request: Request) -> Response:
        try:
            await figures.get()
        except StoreMissing:
            return Response(b"", media_type="text/plain; version=0.0.4")
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type="text/plain; version=0.0.4")

    async def healthz(request: Request) -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    async def root(request: Request) -> Response:
        return RedirectResponse("/console", status_code=307)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sampling = asyncio.create_task(sampler.run(), name="console-sampler")
        try:
            yield
        finally:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
            await store.close()

    app = Starlette(
        routes=[
            Route("/", root),
            Route("/console", overview),
            Route("/console/login", login_form, methods=["GET"]),
            Route("/console/login", login, methods=["POST"]),
            Route("/console/logout", logout, methods=["POST"]),
            Route("/console/dispatches", dispatch_list),
            Route("/console/dispatches/{dispatch_uuid}", dispatch_page),
            Route("/console/dispatches/{dispatch_uuid}/redeliver", redeliver, methods=["POST"]),
            Mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="static"),
            Route("/metrics", metrics),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )
    app.state.store = store  # closed by the lifespan (or by whoever runs the app without one)
    return app


_LEVELS = (
    "in_flight",
    "final_reports_pending",
    "webhooks_pending",
    "webhooks_abandoned",
    "lateness_p99",
)


def _safe_next(request: Request, given: str | None = None) -> str:
    """Where to go after signing in: only a console path (never another site)."""
    target = given if given is not None else request.query_params.get("next", "")
    if target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


def _store_missing() -> Response:
    return problem_response(503, "The projection store is not there yet; is the projector running?")
