"""``dispatch-sender``: consumes ``dispatch.send`` and calls the Messages API."""

from __future__ import annotations

import asyncio
import logging
import signal

from services import fetch_wait
from services.kafka import KafkaSettings, ensure_topics
from services.producer import RebuildingProducer
from services.sender.config import SenderConfig
from services.sender.ledger import Ledger, ensure_ledger_topic
from services.sender.provider import MessagesApiClient
from services.sender.worker import SenderWorker
from services.settings import exit_on_bad_settings

log = logging.getLogger("services.sender")


async def serve(config: SenderConfig, settings: KafkaSettings, stop: asyncio.Event) -> None:
    # A dispatch gives the sender one command, handled alone however many
    # came with it (one provider call each): a gathering fetch would save it
    # nothing, and cost an empty fetch after each command under a trickle,
    # and the next command up to a gathering window of wait.
    fetch_wait.install(gather_ms=0)
    await ensure_topics(settings)
    await ensure_ledger_topic(settings, config.ledger_retention_ms)
    # Rebuilt when it fails: a broker restart can leave an idempotent
    # producer failing every write (services/producer.py).
    producer = RebuildingProducer(settings)
    await producer.start()
    ledger = Ledger(settings, producer)
    provider = MessagesApiClient(config)
    try:
        await ledger.start()
        await ledger.catch_up()
        worker = SenderWorker(
            config,
            settings,
            provider,
            producer,
            ledger,
            shutdown_grace_s=config.shutdown_grace_s,
        )
        await worker.run(stop)
    finally:
        await ledger.stop()
        await provider.aclose()
        await producer.stop()
    log.info("sender stopped")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    with exit_on_bad_settings():
        config = SenderConfig.from_env()
    settings = config.kafka

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, settings, stop)

    try:
        import uvloop

        uvloop.run(run())
    except ImportError:
        asyncio.run(run())
