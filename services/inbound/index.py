"""``message_uuid`` → (dispatch, step), followed from ``dispatch.events``.

The provider's statuses name only its own ``message_uuid``; the dispatch it
belongs to is in the ``MessageSubmitted`` event the sender appended. This
follower reads every partition of ``dispatch.events`` from the start, without
a consumer group, and keeps that mapping in memory.

A status can arrive a moment before the follower has read the
``MessageSubmitted`` it refers to (the provider posts ``submitted`` right
after its 202), and even before the sender, still reading that 202, has
appended the ``MessageSubmitted``. So :meth:`MessageIndex.lookup` of an
unknown uuid waits, up to a bound, until the follower has read up to log end
offsets taken at least ``settle_s`` after the lookup began (the sender's
append has had that long to land); only then is the uuid really unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from events.codec import UndecodableMessage, decode_event
from events.dispatch import MessageSubmitted
from services.kafka import KafkaSettings, follow_from_beginning, reached

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessageRef:
    dispatch_uuid: uuid.UUID
    step: int


class MessageIndex:
    def __init__(
        self, settings: KafkaSettings, *, default_wait_s: float = 2.0, settle_s: float = 0.5
    ) -> None:
        self._settings = settings
        self._default_wait_s = default_wait_s
        self._settle_s = settle_s
        self._refs: dict[str, MessageRef] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._partitions: list[TopicPartition] = []
        # Set (and replaced) after every fetch, to wake lookups that wait.
        self._progress = asyncio.Event()

    # -- reads -----------------------------------------------------------------
    def get(self, message_uuid: str) -> MessageRef | None:
        return self._refs.get(message_uuid)

    def __len__(self) -> int:
        return len(self._refs)

    def apply(self, event: object) -> None:
        """Fold one event in (also used directly by unit tests)."""
        if isinstance(event, MessageSubmitted):
            self._refs[event.message_uuid] = MessageRef(event.dispatch_uuid, event.step)

    async def lookup(self, message_uuid: str, wait: float | None = None) -> MessageRef | None:
        """The dispatch of ``message_uuid``, waiting up to ``wait`` seconds for
        the follower to reach a log end taken ``settle_s`` after the call
        before answering ``None``."""
        found = self._refs.get(message_uuid)
        if found is not None or self._consumer is None:
            return found
        budget = self._default_wait_s if wait is None else wait
        loop = asyncio.get_running_loop()
        settled_at = loop.time() + self._settle_s
        try:
            async with asyncio.timeout(budget):
                while True:
                    asked_at = loop.time()
                    targets = await self._consumer.end_offsets(self._partitions)
                    while (found := self._refs.get(message_uuid)) is None:
                        if await self._reached(targets):
                            break
                        await self._progress.wait()
                    if found is not None or asked_at >= settled_at:
                        return self._refs.get(message_uuid)
                    # Not on the log yet, and the sender may still be
                    # appending it: look again after each of the follower's
                    # fetches, answering as soon as it is read, until the
                    # settle time has passed (then once more, to a log end
                    # taken after it).
                    await self._seen_or_settled(message_uuid, settled_at - asked_at)
        except TimeoutError:
            return self._refs.get(message_uuid)

    async def _seen_or_settled(self, message_uuid: str, settle: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settle):
                while message_uuid not in self._refs:
                    await self._progress.wait()

    async def _reached(self, targets: dict[TopicPartition, int]) -> bool:
        assert self._consumer is not None
        return await reached(self._consumer, targets)

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        self._consumer = await follow_from_beginning(
            self._settings, self._settings.topics.events, "message-index"
        )
        self._partitions = sorted(self._consumer.assignment())
        self._task = asyncio.create_task(self._follow(), name="message-index")

    async def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Wait until everything on the log at call time has been read."""
        assert self._consumer is not None
        async with asyncio.timeout(timeout):
            targets = await self._consumer.end_offsets(self._partitions)
            while not await self._reached(targets):
                await self._progress.wait()

    async def _follow(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if record.value is None:
                        continue
                    try:
                        self.apply(decode_event(record.value))
                    except UndecodableMessage as exc:
                        log.warning("skipping undecodable event at %s: %s", record.offset, exc)
            self._progress.set()
            self._progress = asyncio.Event()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
