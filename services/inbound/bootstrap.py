"""Builds the inbound endpoint's dependencies for the process that hosts it
(the gateway): the message index, started, and the settings from the
environment.

    async with inbound_deps(settings, producer) as deps:
        routes = inbound_routes(deps)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from services.inbound.index import MessageIndex
from services.inbound.routes import InboundDeps
from services.kafka import KafkaSettings
from services.producer import EventWriter


@contextlib.asynccontextmanager
async def inbound_deps(
    settings: KafkaSettings, producer: EventWriter, *, signature_secret: str | None = None
) -> AsyncIterator[InboundDeps]:
    """``producer`` is the host's acks=all producer (``services.kafka.make_producer``);
    ``signature_secret`` overrides ``INBOUND_SIGNATURE_SECRET``."""
    if signature_secret is None:
        signature_secret = os.environ.get("INBOUND_SIGNATURE_SECRET", "")
    wait_s = float(os.environ.get("INBOUND_LOOKUP_WAIT_S", "2"))
    index = MessageIndex(settings, default_wait_s=wait_s)
    await index.start()
    try:
        yield InboundDeps(
            index=index,
            producer=producer,
            events_topic=settings.topics.events,
            signature_secret=signature_secret,
            lookup_wait_s=wait_s,
        )
    finally:
        await index.stop()
