"""Endpoints the gateway hosts for other parts of the system: the inbound
channel-status callback (its producer and read-side lookup start with the app)
and the read endpoints backed by the projector."""

from __future__ import annotations

import contextlib

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.gateway.auth import Applications
from services.gateway.problems import problem_response
from services.gateway.reads import ProjectorClient, read_routes
from services.inbound.bootstrap import inbound_deps
from services.inbound.routes import STATUS_PATH, inbound_routes
from services.inbound.settings import InboundSettings
from services.kafka import KafkaSettings
from services.producer import RebuildingProducer


class InboundMount:
    """``POST /v0.1/status``; answers 503 (the provider retries) until started."""

    def __init__(self, kafka: KafkaSettings, settings: InboundSettings, projector_url: str) -> None:
        self._kafka = kafka
        self._settings = settings
        self._projector_url = projector_url
        self._endpoint: Route | None = None
        self._resources = contextlib.AsyncExitStack()

    async def start(self) -> None:
        producer = RebuildingProducer(self._kafka)
        await producer.start()
        self._resources.push_async_callback(producer.stop)
        deps = await self._resources.enter_async_context(
            inbound_deps(self._kafka, producer, self._projector_url, self._settings)
        )
        routes = inbound_routes(deps)
        self._endpoint = next(r for r in routes if r.path == STATUS_PATH)

    async def stop(self) -> None:
        self._endpoint = None
        await self._resources.aclose()

    async def handle(self, request: Request) -> Response:
        if self._endpoint is None:
            return problem_response(
                503, "Status callbacks are not accepted yet; retry shortly.",
                headers={"Retry-After": "1"},
            )  # fmt: skip
        response: Response = await self._endpoint.endpoint(request)
        return response

    def route(self) -> Route:
        return Route(STATUS_PATH, self.handle, methods=["POST"])


def projector_client(url: str, token: str) -> ProjectorClient:
    return ProjectorClient(url, token=token)


def mounted_routes(
    inbound: InboundMount,
    applications: Applications,
    projector: ProjectorClient,
    *,
    jwt_leeway_s: float,
) -> list[BaseRoute]:
    return [inbound.route(), *read_routes(applications, projector, jwt_leeway_s=jwt_leeway_s)]
