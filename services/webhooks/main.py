"""``dispatch-webhooks``: the webhook deliverer process.

Configuration comes from the environment: KAFKA_BOOTSTRAP, DISPATCH_TOPIC_PREFIX,
DISPATCH_PARTITIONS and the WEBHOOK_* variables of docs/webhooks.md.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from services import fetch_wait
from services.applications.registry import ApplicationRegistry
from services.applications.sealing import KEYS_VARIABLE, SealingError, SecretKeys
from services.kafka import ensure_topics
from services.producer import RebuildingProducer
from services.settings import exit_on_bad_settings
from services.webhooks.config import WebhookSettings
from services.webhooks.deliverer import Deliverer
from services.webhooks.state import ensure_state_topic, partition_count
from services.webhooks.transport import make_transport

log = logging.getLogger("dispatch.webhooks")


async def serve(config: WebhookSettings, stop: asyncio.Event) -> None:
    # Each command is one POST of its own, its state record batched by time
    # (``state_writes.py``) and offsets committed by time (``committing.py``):
    # a gathering fetch would batch nothing more, and hold a final report back
    # for up to the gathering window.
    fetch_wait.install(gather_ms=0)
    keys = SecretKeys.from_env()
    if keys is None:
        # Signature secrets are sealed on the registry: without the key the
        # deliverer could not sign a single webhook.
        raise SealingError(f"{KEYS_VARIABLE} is not set: cannot open signature secrets")
    settings = config.kafka
    await ensure_topics(settings)
    # As many state partitions as command partitions: state follows its command.
    commands = await partition_count(settings, settings.topics.webhooks)
    await ensure_state_topic(settings, commands or settings.partitions, config.state_retention_s)
    registry = ApplicationRegistry(settings, keys)
    await registry.start()
    # Rebuilt when it fails: a broker restart can leave an idempotent
    # producer failing every write (services/producer.py).
    producer = RebuildingProducer(settings)
    await producer.start()
    transport = make_transport(config)
    try:
        await registry.wait_loaded()
        deliverer = Deliverer(
            settings, config, registry=registry, producer=producer, transport=transport
        )
        await deliverer.run(stop, ready=lambda: log.info("webhook deliverer ready"))
    finally:
        await transport.aclose()
        await producer.stop()
        await registry.stop()


async def _main(config: WebhookSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, stop)
    log.info("webhook deliverer stopped")


def main() -> None:
    with exit_on_bad_settings():
        config = WebhookSettings.from_env()
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        asyncio.run(_main(config))
    except SealingError as exc:
        log.error("refusing to start: %s", exc)
        raise SystemExit(2) from exc


if __name__ == "__main__":
    main()
