"""Follows the compacted ``dispatch.applications`` topic into memory.

Every process that needs applications (the gateway for auth, the webhook
deliverer for URLs and secrets) runs one. It reads the topic from the start,
reports itself loaded once it reached the end offsets it saw at start-up, then
keeps following, so a new application works within seconds without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from events.applications import ApplicationRegistered
from events.codec import UndecodableMessage, decode_application
from services import fetch_wait
from services.applications.sealing import SealingError, SecretKeys, is_sealed
from services.kafka import KafkaSettings, follow_from_beginning

log = logging.getLogger(__name__)


def _reason(exc: UndecodableMessage) -> str:
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        problems = cause.errors(include_input=False, include_context=False, include_url=False)
        return "; ".join(f"{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems[:5])
    return "not an application record"


class ApplicationRegistry:
    def __init__(self, settings: KafkaSettings, keys: SecretKeys | None = None) -> None:
        """``keys`` open sealed signature secrets (default: from the
        environment); without any, sealed values stay sealed (the gateway
        never needs them)."""
        self._settings = settings
        self._keys = keys if keys is not None else SecretKeys.from_env()
        self._by_id: dict[str, ApplicationRegistered] = {}
        self._by_api_key: dict[str, ApplicationRegistered] = {}
        self._loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    # -- reads -----------------------------------------------------------------
    def get(self, application_id: str) -> ApplicationRegistered | None:
        return self._by_id.get(application_id)

    def by_api_key(self, api_key: str) -> ApplicationRegistered | None:
        return self._by_api_key.get(api_key)

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    async def wait_loaded(self, timeout: float = 30.0) -> None:
        await asyncio.wait_for(self._loaded.wait(), timeout)

    def apply(self, app: ApplicationRegistered) -> None:
        """Fold one record in (also used directly by unit tests)."""
        app = self._opened(app)
        previous = self._by_id.get(app.application_id)
        if previous is not None and previous.api_key != app.api_key:
            self._by_api_key.pop(previous.api_key, None)
        self._by_id[app.application_id] = app
        self._by_api_key[app.api_key] = app

    def _opened(self, app: ApplicationRegistered) -> ApplicationRegistered:
        if self._keys is None or not is_sealed(app.signature_secret):
            return app
        try:
            secret = self._keys.open(app.signature_secret)
        except SealingError as exc:
            # Its webhooks cannot be signed; say so without the value.
            log.warning("application %s: signature secret unusable: %s", app.application_id, exc)
            secret = ""
        return app.model_copy(update={"signature_secret": secret})

    def revoke(self, application_id: str) -> None:
        previous = self._by_id.pop(application_id, None)
        if previous is not None:
            self._by_api_key.pop(previous.api_key, None)

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self._consumer = await follow_from_beginning(
            self._settings, self._settings.topics.applications, "registry"
        )
        end_offsets = await self._consumer.end_offsets(sorted(self._consumer.assignment()))
        self._task = asyncio.create_task(self._follow(end_offsets), name="application-registry")

    async def _follow(self, end_offsets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.value is None:  # a tombstone: revoked
                        if record.key is not None:
                            self.revoke(record.key.decode())
                        continue
                    try:
                        self.apply(decode_application(record.value))
                    except UndecodableMessage as exc:
                        # Where and why, never the record: it holds secrets.
                        log.warning(
                            "skipping undecodable application record at %s[%d]@%d: %s",
                            record.topic, record.partition, record.offset, _reason(exc),
                        )  # fmt: skip
            if not self._loaded.is_set():
                positions = [await consumer.position(tp) for tp in end_offsets]
                if all(
                    pos >= end for pos, end in zip(positions, end_offsets.values(), strict=True)
                ):
                    self._loaded.set()
                    # Caught up, the follower only fetches from now on:
                    # applications change rarely, and a record ends the wait.
                    fetch_wait.rest_longer(consumer)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
