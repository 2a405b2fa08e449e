"""Builds the inbound endpoint's dependencies for the process that hosts it
(the gateway): the read-side lookup and the settings from the environment.

    async with inbound_deps(kafka, producer, projector_url, InboundSettings.from_env()) as deps:
        routes = inbound_routes(deps)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from services.gateway.rate_limit import RateLimiter
from services.inbound.lookup import ReadSideLookup
from services.inbound.routes import InboundDeps
from services.inbound.settings import InboundSettings
from services.internal_endpoints import internal_token
from services.kafka import KafkaSettings
from services.producer import EventWriter


@contextlib.asynccontextmanager
async def inbound_deps(
    kafka: KafkaSettings,
    producer: EventWriter,
    projector_url: str,
    settings: InboundSettings,
) -> AsyncIterator[InboundDeps]:
    """``producer`` is the host's acks=all producer; ``projector_url`` the read
    side's internal API; ``settings`` the endpoint's own."""
    lookup = ReadSideLookup(projector_url, wait_s=settings.lookup_wait_s, token=internal_token())
    try:
        yield InboundDeps(
            lookup=lookup,
            producer=producer,
            events_topic=kafka.topics.events,
            signature_secret=settings.signature_secret,
            allow_unsigned=settings.allow_unsigned,
            signature_max_age_s=settings.max_age_s,
            rate_limiter=RateLimiter(settings.rate_limit_per_s, settings.burst),
        )
    finally:
        await lookup.close()
