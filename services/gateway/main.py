"""``dispatch-gateway``: the HTTP API process.

Kept import-light: :func:`build_app_from_env` builds the wired application
(other modules may pass ``extra_routes``), :func:`main` serves it with
uvicorn, which stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiokafka.errors import KafkaError
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from services import http_server
from services.applications.registry import ApplicationRegistry
from services.gateway.app import GatewayDeps, create_app
from services.gateway.event_log import KafkaEventLog
from services.gateway.http_protocol import BoundedHeadProtocol
from services.gateway.mounts import InboundMount, mounted_routes, projector_client
from services.gateway.settings import GatewaySettings
from services.inbound.settings import InboundSettings
from services.internal_endpoints import is_loopback
from services.kafka import ensure_topics
from services.settings import exit_on_bad_settings

log = logging.getLogger("dispatch.gateway")

CONNECT_RETRY_S = 1.0


async def _connect(
    settings: GatewaySettings, registry: ApplicationRegistry, event_log: KafkaEventLog
) -> None:
    """Reach Kafka, retrying: the process serves /healthz (and 503 on /readyz)
    meanwhile, so an orchestrator sees it alive but not ready."""
    while True:
        try:
            await asyncio.wait_for(ensure_topics(settings.kafka), 10)
            await asyncio.wait_for(registry.start(), 30)
            break
        except (TimeoutError, KafkaError, OSError, RuntimeError) as exc:
            log.warning("Kafka not reachable yet (%r); retrying", exc)
            await asyncio.sleep(CONNECT_RETRY_S)
    await event_log.start()
    await registry.wait_loaded(timeout=3600)
    log.info("gateway ready: registry loaded from %s", settings.kafka.topics.applications)


def build_app_from_env(*, extra_routes: Sequence[BaseRoute] = ()) -> Starlette:
    settings = GatewaySettings.from_env()
    # Here, not in main(): each uvicorn worker process builds its own app.
    BoundedHeadProtocol.max_head_bytes = settings.max_header_bytes
    registry = ApplicationRegistry(settings.kafka)
    event_log = KafkaEventLog(
        settings.kafka,
        timeout_s=settings.produce_timeout_s,
        linger_ms=settings.producer_linger_ms,
    )

    inbound = InboundMount(settings.kafka, InboundSettings.from_env(), settings.projector_url)
    projector = projector_client(settings.projector_url, settings.internal_token)

    async def connect_all() -> None:
        await _connect(settings, registry, event_log)
        await inbound.start()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        connecting = asyncio.create_task(connect_all())
        try:
            yield
        finally:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await connecting
            with contextlib.suppress(Exception):
                await asyncio.wait_for(inbound.stop(), 5)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(registry.stop(), 5)
            await projector.close()
            await event_log.stop()

    deps = GatewayDeps(settings=settings, applications=registry, event_log=event_log)
    routes = [
        *mounted_routes(inbound, registry, projector, jwt_leeway_s=settings.jwt_leeway_s),
        *extra_routes,
    ]
    app = create_app(deps, extra_routes=routes, lifespan=lifespan)
    app.state.settings = settings
    return app


def main() -> None:
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with exit_on_bad_settings():
        settings = GatewaySettings.from_env()
        callback_auth = InboundSettings.from_env()
    if callback_auth.allow_unsigned and not callback_auth.signature_secret:
        log.warning(
            "accepting UNSIGNED status callbacks: anyone who reaches /v0.1/status can "
            "complete any dispatch (local development only)"
        )
    if not is_loopback(settings.host) and not settings.internal_token:
        log.warning(
            "/metrics is refused to everyone: listening on %s without DISPATCH_INTERNAL_TOKEN",
            settings.host,
        )
    log.info(
        "listening on http://%s:%d (%d worker(s))", settings.host, settings.port, settings.workers
    )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "access_log": False,
        "log_level": "info",
        "timeout_graceful_shutdown": 5,
        # 431 for a request head over GATEWAY_MAX_HEADER_BYTES, without buffering it.
        "http": BoundedHeadProtocol,
    }
    if settings.workers > 1:
        # Each worker is a process with its own producer, registry follower,
        # rate limiter and idempotency cache.
        uvicorn.run(
            "services.gateway.main:build_app_from_env",
            factory=True,
            workers=settings.workers,
            **options,
        )
    else:
        http_server.run(build_app_from_env(), **options)


if __name__ == "__main__":
    main()
