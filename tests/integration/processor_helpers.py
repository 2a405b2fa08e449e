"""Play the gateway and the sender against the real processor, and watch what it writes."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.partitioner import murmur2

from events.base import Message, utcnow
from events.codec import decode_event, decode_send, decode_webhook, encode
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import (
    ErrorDetail,
    MessageSendFailed,
    MessageStatusReceived,
    MessageSubmitted,
    Usage,
    WorkflowRequested,
)
from services.failover.factories import command_id
from services.kafka import KafkaSettings, make_producer
from tests.conftest import kafka_env
from tests.processes import Process, free_port


def processor_env(settings: KafkaSettings, data_dir: Path, **env: str) -> dict[str, str]:
    return {
        **kafka_env(settings),
        "PROCESSOR_DATA_DIR": str(data_dir),
        "PROCESSOR_METRICS_PORT": str(free_port()),
        **env,
    }


def start_processor(
    settings: KafkaSettings, data_dir: Path, log_dir: Path, *, name: str = "processor", **env: str
) -> Process:
    return Process(name, ["dispatch-processor"], processor_env(settings, data_dir, **env), log_dir)


def item(
    channel: str = "sms", expiry: int | None = 15, condition: str = "delivered"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "to": {"type": channel, "number": "447700900000"},
        "from": {"type": channel, "number": "447700900001"},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if expiry is not None:
        body["failover"] = {"expiry_time": expiry, "condition_status": condition}
    return body


class Watcher:
    """Follows dispatch.send, dispatch.webhooks and dispatch.events in the background."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.sends: list[tuple[float, SendMessage]] = []
        self.webhooks: list[DeliverWebhook] = []
        self.events: list[Any] = []
        # Commands not on the partition aiokafka's default partitioner picks
        # for their key (the dispatch): consumers rely on one partition per dispatch.
        self.misplaced: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        t = self.settings.topics
        self._consumer = AIOKafkaConsumer(
            t.send,
            t.webhooks,
            t.events,
            bootstrap_servers=self.settings.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        t = self.settings.topics
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if record.topic in (t.send, t.webhooks):
                        self._check_partition(record)
                    if record.topic == t.send:
                        self.sends.append((record.timestamp / 1000, decode_send(record.value)))
                    elif record.topic == t.webhooks:
                        self.webhooks.append(decode_webhook(record.value))
                    else:
                        with contextlib.suppress(ValueError):
                            event = decode_event(record.value)
                            if event.type != "Tick":
                                self.events.append(event)

    def _check_partition(self, record: Any) -> None:
        expected = (murmur2(record.key) & 0x7FFFFFFF) % self.settings.partitions
        if record.partition != expected:
            self.misplaced.append(
                f"{record.topic}[{record.partition}] key {record.key!r}: expected {expected}"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def steps_sent(self, dispatch: uuid.UUID) -> list[int]:
        return sorted({s.step for _, s in self.sends if s.dispatch_uuid == dispatch})

    def send_time(self, dispatch: uuid.UUID, step: int) -> float | None:
        times = [ts for ts, s in self.sends if s.dispatch_uuid == dispatch and s.step == step]
        return min(times) if times else None

    def hooks(self, dispatch: uuid.UUID, kind: str) -> list[dict[str, Any]]:
        """Distinct webhooks by id (what a receiver that dedupes sees), in order."""
        seen: dict[uuid.UUID, dict[str, Any]] = {}
        for hook in self.webhooks:
            if hook.dispatch_uuid == dispatch and hook.kind == kind:
                seen.setdefault(hook.event_id, hook.payload)
        return list(seen.values())

    def event_types(self, dispatch: uuid.UUID) -> list[str]:
        return [e.type for e in self.events if getattr(e, "dispatch_uuid", None) == dispatch]

    async def until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s")
            await asyncio.sleep(0.1)


class Driver:
    """Appends what the gateway and the sender would append to dispatch.events."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer = make_producer(settings)

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def append(self, event: Message, dispatch: uuid.UUID) -> None:
        await self.producer.send_and_wait(
            self.settings.topics.events, encode(event), key=str(dispatch).encode()
        )

    async def request(self, workflow: list[dict[str, Any]]) -> uuid.UUID:
        dispatch = uuid.uuid4()
        await self.append(
            WorkflowRequested(dispatch_uuid=dispatch, application_id="app-1", workflow=workflow),
            dispatch,
        )
        return dispatch

    async def submitted(self, dispatch: uuid.UUID, step: int) -> str:
        message_uuid = f"{dispatch.hex[:8]}-m{step}"
        await self.append(
            MessageSubmitted(
                dispatch_uuid=dispatch,
                step=step,
                command_id=command_id(str(dispatch), step),
                message_uuid=message_uuid,
            ),
            dispatch,
        )
        return message_uuid

    async def send_failed(self, dispatch: uuid.UUID, step: int) -> None:
        await self.append(
            MessageSendFailed(
                dispatch_uuid=dispatch,
                step=step,
                command_id=command_id(str(dispatch), step),
                error=ErrorDetail(code=1300, reason="Not part of the provider network"),
                http_status=422,
            ),
            dispatch,
        )

    async def status(
        self,
        dispatch: uuid.UUID,
        message_uuid: str,
        status: str,
        price: str | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        await self.append(
            MessageStatusReceived(
                dispatch_uuid=dispatch,
                message_uuid=message_uuid,
                status=status,  # type: ignore[arg-type]
                timestamp=timestamp or utcnow(),
                to={"type": "sms", "number": "447700900000"},
                from_={"type": "sms", "number": "447700900001"},
                usage=Usage(price=price) if price else None,
            ),
            dispatch,
        )
