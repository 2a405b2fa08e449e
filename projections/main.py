"""``dispatch-projector``: follow dispatch.events into SQLite and serve reads.

Environment: KAFKA_BOOTSTRAP, DISPATCH_TOPIC_PREFIX, DISPATCH_PARTITIONS;
PROJECTOR_DB (default .local/projections.sqlite3), PROJECTOR_HOST (127.0.0.1),
PROJECTOR_PORT (8070); DISPATCH_INTERNAL_TOKEN, required when PROJECTOR_HOST is
not loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import uvicorn

from projections.api import create_api
from projections.projector import Projector
from projections.store import ProjectionStore
from services.internal_endpoints import InternalTokenMissing, RequireInternalToken, token_for
from services.kafka import KafkaSettings, ensure_topics

log = logging.getLogger("dispatch.projector")


async def serve() -> None:
    host = os.environ.get("PROJECTOR_HOST", "127.0.0.1")
    token = token_for(host, "the projector's API")  # before anything else: fail fast
    settings = KafkaSettings.from_env()
    await ensure_topics(settings)
    store = ProjectionStore(os.environ.get("PROJECTOR_DB", ".local/projections.sqlite3"))
    projector = Projector(settings, store)
    await projector.start()
    config = uvicorn.Config(
        RequireInternalToken(create_api(store, projector.caught_up), token),
        host=host,
        port=int(os.environ.get("PROJECTOR_PORT", "8070")),
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    following = asyncio.create_task(projector.run(), name="projector")

    def stop_serving_if_following_died(task: asyncio.Task[None]) -> None:
        # A projector that stopped following must not keep answering stale reads.
        if not task.cancelled() and task.exception() is not None:
            log.error("projector stopped following", exc_info=task.exception())
            server.should_exit = True

    following.add_done_callback(stop_serving_if_following_died)
    log.info("projector following %s into %s", settings.topics.events, store.path)
    try:
        await server.serve()  # returns on SIGTERM/SIGINT
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await projector.stop()
        store.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve())
    except InternalTokenMissing as exc:
        log.error("refusing to start: %s", exc)
        raise SystemExit(2) from exc
