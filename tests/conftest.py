"""Shared fixtures. Tests marked ``kafka`` use the real broker that ``make test``
starts (address in ``KAFKA_BOOTSTRAP``); each test gets its own topic prefix so
tests never see each other's records."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.topics import Topics
from services.kafka import KafkaSettings, ensure_topics
from tests.processes import Process

# store_url / postgres_url: the projection store (SQLite and PostgreSQL).
pytest_plugins = ["tests.stores"]
# Seals signature secrets in tests, in-process (publish_application) and in
# every process started with kafka_env().
TEST_SECRETS_KEYS = "test=" + "k" * 43
os.environ.setdefault("DISPATCH_SECRETS_KEYS", TEST_SECRETS_KEYS)


def _broker_address() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:19092")


def _reachable(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) == 0


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    address = _broker_address()
    if not _reachable(address):
        pytest.fail(
            f"no Kafka broker at {address}: run the suite with `make test`, which starts one"
        )
    return address


@pytest.fixture
async def kafka_settings(kafka_bootstrap: str) -> KafkaSettings:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap, partitions=4, topics=Topics.from_prefix(prefix)
    )
    await ensure_topics(settings)
    return settings


def kafka_env(settings: KafkaSettings) -> dict[str, str]:
    """Environment that points a process at the test's broker and topics (and
    the key that seals signature secrets on the registry topic)."""
    prefix = settings.topics.events.removesuffix("dispatch.events")
    env = {
        "KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "DISPATCH_TOPIC_PREFIX": prefix,
        "DISPATCH_PARTITIONS": str(settings.partitions),
        "DISPATCH_REPLICATION_FACTOR": str(settings.replication_factor),
        "DISPATCH_SECRETS_KEYS": TEST_SECRETS_KEYS,
    }
    if settings.min_insync_replicas is not None:
        env["DISPATCH_MIN_INSYNC_REPLICAS"] = str(settings.min_insync_replicas)
    return env


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[list[Process]]:
    """Start processes with ``start_process`` and append them here; all are
    stopped (SIGTERM, then SIGKILL) when the test ends, whatever happened."""
    started: list[Process] = []
    yield started
    for process in reversed(started):
        process.stop()
