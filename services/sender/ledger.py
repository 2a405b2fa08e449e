"""The sender's durable memory of what it did for each command id.

Before each call to the provider the sender appends an *intent* for the
command id to a compacted topic (acks=all); after a call the provider surely
refused for now (5xx, 429, no connection) it appends *retrying*; after the
last call it appends the *outcome* (the very event it then appends to
``dispatch.events``). A redelivered command is then answered from here:

- outcome recorded → re-append the same event (deterministic id, harmless);
- retrying → every call so far was surely refused: the tries go on where they
  stopped (same first-attempt time, same budget);
- intent last → the process died during a call. The provider may or may not
  have accepted it, and calling again could send it twice, so it is not sent
  again: the step's outcome is unknown (``MessageOutcomeUnknown``) and it waits
  as if submitted when the call in flight began.

Every sender instance follows the whole topic, and catches up to its end before
it processes newly assigned partitions, so an instance that takes over from a
dead one sees the dead one's intents.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import TopicAlreadyExistsError

from events.codec import UndecodableMessage, decode_event, encode, from_json, to_json
from events.dispatch import MessageOutcomeUnknown, MessageSendFailed, MessageSubmitted
from services.kafka import KafkaSettings, follow_from_beginning, new_topic, reached
from services.kafka_security import client_options
from services.producer import Record, RecordsWriter

log = logging.getLogger(__name__)

Outcome = MessageSubmitted | MessageSendFailed | MessageOutcomeUnknown

# The ledger follower's fetches wait for this much, or this long.
LEDGER_FETCH_MIN_BYTES = 1024 * 1024
LEDGER_FETCH_MAX_WAIT_MS = 500


@dataclass(frozen=True)
class Intent:
    """Call number ``attempt`` was started for this command, at
    ``attempt_at``; its first call was at ``at``. Its outcome is not known.
    (The times are None in intents recorded before they were.)"""

    at: datetime | None = None
    attempt: int = 1
    attempt_at: datetime | None = None

    @property
    def started_at(self) -> datetime | None:
        """When the call in flight began: an unknown outcome waits from then."""
        return self.attempt_at or self.at


@dataclass(frozen=True)
class Retrying:
    """``attempts`` calls were made for this command, the first at ``at``, and
    the provider surely accepted none of them (the last said ``reason``): the
    next call may be made."""

    at: datetime
    attempts: int
    reason: str
    http_status: int | None = None


INTENT = Intent()
LedgerEntry = Intent | Retrying | Outcome


def progress(entry: LedgerEntry) -> float:
    """How far a send had got: intent 1 < retrying 1 < intent 2 < … < outcome.
    Records are read late and more than once (this sender's own, read back;
    a catch-up after a rebalance), so an entry never goes back."""
    if isinstance(entry, Intent):
        return 2 * entry.attempt - 1
    if isinstance(entry, Retrying):
        return 2 * entry.attempts
    return float("inf")


def ledger_topic(settings: KafkaSettings) -> str:
    prefix = settings.topics.events.removesuffix("dispatch.events")
    return f"{prefix}dispatch.sender-ledger"


def parse_entry(value: bytes) -> LedgerEntry | None:
    try:
        data = from_json(value)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("state") == "intent":
        attempt = data.get("attempt", 1)
        attempt = attempt if isinstance(attempt, int) and attempt >= 1 else 1
        return Intent(_time(data.get("at")), attempt, _time(data.get("attempt_at")))
    if isinstance(data, dict) and data.get("state") == "retrying":
        return _retrying(data)
    try:
        event = decode_event(value)
    except UndecodableMessage:
        return None
    return event if isinstance(event, Outcome) else None


def _time(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _retrying(data: dict[str, object]) -> Retrying | Intent:
    """A retrying record, or, if it cannot be read, the intent before it: an
    unreadable record must never let a call be made that may be a second one."""
    attempts, at, reason, http_status = (
        data.get("attempts"),
        data.get("at"),
        data.get("reason"),
        data.get("http_status"),
    )
    if not isinstance(attempts, int) or attempts < 1:
        return INTENT
    first = _time(at)
    if first is None:
        return Intent(None, attempts)
    return Retrying(
        first,
        attempts,
        reason if isinstance(reason, str) else "",
        http_status if isinstance(http_status, int) else None,
    )


async def ensure_ledger_topic(settings: KafkaSettings, retention_ms: int) -> None:
    # Compacted (one record per command) and aged out: a command is not
    # redelivered weeks later, and the ledger must not grow without bound.
    spec = new_topic(
        settings,
        ledger_topic(settings),
        settings.partitions,
        {"cleanup.policy": "compact,delete", "retention.ms": str(retention_ms)},
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, **client_options())
    await admin.start()
    try:
        if spec.name not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([spec])
    finally:
        await admin.close()


class Ledger:
    def __init__(self, settings: KafkaSettings, producer: RecordsWriter) -> None:
        self._settings = settings
        self._topic = ledger_topic(settings)
        self._producer = producer
        self._entries: dict[uuid.UUID, LedgerEntry] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()

    def get(self, command_id: uuid.UUID) -> LedgerEntry | None:
        return self._entries.get(command_id)

    def apply(self, command_id: uuid.UUID, entry: LedgerEntry) -> None:
        # An outcome is final, and a late-read intent or retrying never takes
        # a send back to an earlier point.
        current = self._entries.get(command_id)
        if (
            current is not None
            and not isinstance(entry, Outcome)
            and progress(entry) <= progress(current)
        ):
            return
        self._entries[command_id] = entry

    async def record_intent(
        self,
        command_id: uuid.UUID,
        at: datetime,
        attempt: int = 1,
        attempt_at: datetime | None = None,
    ) -> None:
        """Call number ``attempt`` (at ``attempt_at``) of a send first tried at ``at``."""
        attempt_at = attempt_at or at
        record = {
            "state": "intent",
            "at": at.isoformat(),
            "attempt": attempt,
            "attempt_at": attempt_at.isoformat(),
        }
        await self._producer.send_and_wait(
            self._topic, to_json(record), key=str(command_id).encode()
        )
        self.apply(command_id, Intent(at, attempt, attempt_at))

    async def record_retrying(self, command_id: uuid.UUID, retrying: Retrying) -> None:
        record = {
            "state": "retrying",
            "at": retrying.at.isoformat(),
            "attempts": retrying.attempts,
            "reason": retrying.reason,
            "http_status": retrying.http_status,
        }
        await self._producer.send_and_wait(
            self._topic, to_json(record), key=str(command_id).encode()
        )
        self.apply(command_id, retrying)

    async def record_outcome(
        self, command_id: uuid.UUID, event: Outcome, *, along_with: Record | None = None
    ) -> None:
        """Record the outcome, and ``along_with`` in the same write: one
        produce request, not two one after the other, when one broker leads
        both partitions. Acknowledged together or raised together."""
        record: Record = (self._topic, str(command_id).encode(), encode(event))
        if along_with is None:
            await self._producer.send_and_wait(record[0], record[2], key=record[1])
        else:
            await self._producer.send_all([record, along_with])
        self.apply(command_id, event)

    # -- following ---------------------------------------------------------------
    async def start(self) -> None:
        # What this sender writes it applies at once; following the topic is
        # for the others' records, which matter only when partitions move
        # (``catch_up``, at most one gathering wait later). So the follower
        # asks for a batch at a time, not for each of the two records every
        # send writes (with several senders, each reads every one of them).
        self._consumer = await follow_from_beginning(
            self._settings,
            self._topic,
            "sender-ledger",
            fetch_min_bytes=LEDGER_FETCH_MIN_BYTES,
            fetch_max_wait_ms=LEDGER_FETCH_MAX_WAIT_MS,
        )
        self._task = asyncio.create_task(self._follow(), name="sender-ledger")

    async def catch_up(self, timeout: float = 60.0) -> None:
        """Wait until every record on the ledger at call time has been read."""
        assert self._consumer is not None
        consumer = self._consumer
        async with asyncio.timeout(timeout):
            targets: dict[TopicPartition, int] = await consumer.end_offsets(
                sorted(consumer.assignment())
            )
            while not await reached(consumer, targets):
                await self._progress.wait()

    async def _follow(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    if record.key is None or record.value is None:
                        continue
                    entry = parse_entry(record.value)
                    try:
                        command_id = uuid.UUID(record.key.decode())
                    except ValueError:
                        entry = None
                    if entry is None:
                        log.warning("skipping unreadable ledger record at %s", record.offset)
                        continue
                    self.apply(command_id, entry)
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
