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

from aiokafka import AIOKafkaProducer

from services.inbound.index import MessageIndex
from services.inbound.routes import InboundDeps
from services.inbound.settings import CallbackAuth
from services.kafka import KafkaSettings


@contextlib.asynccontextmanager
async def inbound_deps(
    settings: KafkaSettings, producer: AIOKafkaProducer, auth: CallbackAuth
) -> AsyncIterator[InboundDeps]:
    """``producer`` is the host's acks=all producer (``services.kafka.make_producer``);
    ``auth`` how callbacks are authenticated (``CallbackAuth.from_env()``)."""
    wait_s = float(os.environ.get("INBOUND_LOOKUP_WAIT_S", "2"))
    index = MessageIndex(settings, default_wait_s=wait_s)
    await index.start()
    try:
        yield InboundDeps(
            index=index,
            producer=producer,
            events_topic=settings.topics.events,
            signature_secret=auth.signature_secret,
            allow_unsigned=auth.allow_unsigned,
            signature_max_age_s=auth.max_age_s,
            lookup_wait_s=wait_s,
        )
    finally:
        await index.stop()
