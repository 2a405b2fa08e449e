"""Builds the inbound endpoint's dependencies for the process that hosts it
(the gateway): the read-side lookup and the settings from the environment.

    async with inbound_deps(settings, producer, projector_url) as deps:
        routes = inbound_routes(deps)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from services.gateway.rate_limit import RateLimiter
from services.inbound.lookup import ReadSideLookup
from services.inbound.routes import InboundDeps
from services.inbound.settings import CallbackAuth
from services.internal_endpoints import internal_token
from services.kafka import KafkaSettings
from services.producer import EventWriter


@contextlib.asynccontextmanager
async def inbound_deps(
    settings: KafkaSettings, producer: EventWriter, projector_url: str, auth: CallbackAuth
) -> AsyncIterator[InboundDeps]:
    """``producer`` is the host's acks=all producer; ``projector_url`` the read
    side's internal API; ``auth`` how callbacks are authenticated
    (``CallbackAuth.from_env()``)."""
    wait_s = float(os.environ.get("INBOUND_LOOKUP_WAIT_S", "2"))
    rate = float(os.environ.get("INBOUND_RATE_LIMIT_PER_S", "2000"))
    burst = int(os.environ.get("INBOUND_RATE_LIMIT_BURST", str(int(rate * 2))))
    lookup = ReadSideLookup(projector_url, wait_s=wait_s, token=internal_token())
    try:
        yield InboundDeps(
            lookup=lookup,
            producer=producer,
            events_topic=settings.topics.events,
            signature_secret=auth.signature_secret,
            allow_unsigned=auth.allow_unsigned,
            signature_max_age_s=auth.max_age_s,
            rate_limiter=RateLimiter(rate, burst),
        )
    finally:
        await lookup.close()
