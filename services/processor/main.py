"""``dispatch-processor``: run the failover engine as a faust worker."""

from __future__ import annotations

import asyncio
import logging
import sys

import faust

from services.internal_endpoints import InternalTokenMissing, serve_metrics, token_for
from services.kafka import ensure_topics
from services.processor.app import build_app
from services.processor.config import ProcessorConfig
from services.settings import exit_on_bad_settings


def main() -> None:
    with exit_on_bad_settings():
        config = ProcessorConfig.from_env()
    logging.basicConfig(
        stream=sys.stdout,
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Our topics, and faust's changelogs and leader topic, must exist (with the
    # configured partition count) before faust starts (see ``faust_topic_specs``).
    asyncio.run(ensure_topics(config.kafka, extra=config.faust_topic_specs()))
    if config.metrics_port:
        host = config.metrics_host
        try:
            token = token_for(host, "processor metrics")
        except InternalTokenMissing as exc:
            logging.getLogger("dispatch.processor").error("refusing to start: %s", exc)
            raise SystemExit(2) from exc
        serve_metrics(config.metrics_port, host, token)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    app = build_app(config)
    logging.getLogger("dispatch.processor").info(
        "processor %s starting: topics %s, %d partitions, store %s",
        config.full_app_id,
        config.kafka.topics.events,
        config.kafka.partitions,
        config.store,
    )
    worker = faust.Worker(app, loglevel=config.log_level, stdout=sys.stdout, quiet=True)
    # At WARNING and above faust draws a terminal spinner and turns the root
    # logger to DEBUG for it, which costs more than the processing itself.
    worker.spinner = None
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker.execute_from_commandline()
