"""Creates every topic the processes of ``make run`` use and waits until each
partition has a leader, so that no process starts by reading a topic the
broker is still setting up (which aiokafka logs as an ERROR, harmless but
alarming on a first run)."""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient

from services.kafka import KafkaSettings, ensure_topics
from services.sender.config import SenderConfig
from services.sender.ledger import ensure_ledger_topic, ledger_topic
from services.webhooks.config import WebhookSettings
from services.webhooks.state import ensure_state_topic, state_topic

LEADER_WAIT_S = 20.0


async def prepare(settings: KafkaSettings) -> None:
    await ensure_topics(settings)
    await ensure_ledger_topic(settings, SenderConfig.from_env().ledger_retention_ms)
    await ensure_state_topic(
        settings, settings.partitions, WebhookSettings.from_env().state_retention_s
    )
    topics = settings.topics
    names = [
        topics.events, topics.send, topics.webhooks, topics.applications, topics.dead_letters,
        ledger_topic(settings), state_topic(settings),
    ]  # fmt: skip
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        deadline = time.monotonic() + LEADER_WAIT_S
        while time.monotonic() < deadline:
            described = await admin.describe_topics(names)
            if all(
                t.get("error_code", 0) == 0
                and t["partitions"]
                and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            ):
                return
            await asyncio.sleep(0.2)
        raise SystemExit(f"topics without a leader after {LEADER_WAIT_S:.0f}s: {names}")
    finally:
        await admin.close()


if __name__ == "__main__":
    asyncio.run(prepare(KafkaSettings.from_env()))
