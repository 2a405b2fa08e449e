"""``dispatch-projector``: follow dispatch.events into the store and serve reads.

Environment: KAFKA_BOOTSTRAP, DISPATCH_TOPIC_PREFIX, DISPATCH_PARTITIONS;
PROJECTOR_STORE_URL (``postgresql://...`` or ``sqlite:///path``; default the
SQLite file at PROJECTOR_DB, itself .local/projections.sqlite3 by default);
PROJECTOR_GROUP (the consumer group of projectors sharing a PostgreSQL store;
default derived from the database's address); PROJECTOR_HOST (127.0.0.1),
PROJECTOR_PORT (8070); DISPATCH_INTERNAL_TOKEN, required when PROJECTOR_HOST is
not loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
import uvicorn

from projections.api import create_api
from projections.projector import Projector
from projections.settings import ProjectorSettings
from projections.store import default_group, open_store, redacted
from services import fetch_wait, http_server
from services.dead_letters import DeadLetters
from services.internal_endpoints import InternalTokenMissing, RequireInternalToken, token_for
from services.kafka import ensure_topics
from services.producer import RebuildingProducer
from services.settings import exit_on_bad_settings

log = logging.getLogger("dispatch.projector")


async def serve(config: ProjectorSettings) -> None:
    host = config.host
    token = token_for(host, "the projector's API")  # before anything else: fail fast
    settings = config.kafka
    fetch_wait.install(gather_ms=config.fetch_gather_ms)
    await ensure_topics(settings)
    url = config.store
    try:
        store = await open_store(url)
    except (OSError, ValueError, asyncpg.PostgresError) as exc:
        # One clear line for the operator; the supervisor restarts the projector.
        raise SystemExit(f"projection store {redacted(url)} unusable: {exc}") from None
    group = None
    if store.shared:
        group = config.group or default_group(url, settings.topic_prefix)
    # Records it cannot read or fold are parked on the dead-letter topic.
    producer = RebuildingProducer(settings)
    await producer.start()
    dead_letters = DeadLetters(producer, settings.topics.dead_letters)
    projector = Projector(settings, store, group_id=group, dead_letters=dead_letters)
    await projector.start()
    server_config = uvicorn.Config(
        RequireInternalToken(create_api(store, projector.caught_up), token),
        host=host,
        port=config.port,
        log_level="warning",
        access_log=False,
    )
    server = http_server.Server(server_config)
    following = asyncio.create_task(projector.run(), name="projector")

    def stop_serving_if_following_died(task: asyncio.Task[None]) -> None:
        # A projector that stopped following must not keep answering stale reads.
        if not task.cancelled() and task.exception() is not None:
            log.error("projector stopped following", exc_info=task.exception())
            server.should_exit = True

    following.add_done_callback(stop_serving_if_following_died)
    log.info(
        "projector following %s into %s%s",
        settings.topics.events,
        store.description,
        f" as group {group}" if group else "",
    )
    try:
        await server.serve()  # returns on SIGTERM/SIGINT
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        await projector.stop()
        await producer.stop()
        await store.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with exit_on_bad_settings():
        config = ProjectorSettings.from_env()
    try:
        asyncio.run(serve(config))
    except InternalTokenMissing as exc:
        log.error("refusing to start: %s", exc)
        raise SystemExit(2) from exc
