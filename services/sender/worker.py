"""The sender's consume loop: many sends in flight, in order per dispatch,
offsets committed only behind finished records.

Records are routed to one *lane* per Kafka key (the dispatch): a lane handles
its records one after another, so a dispatch's events keep their order, while
lanes of different dispatches run side by side up to ``concurrency`` records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from events.base import utcnow
from events.codec import UndecodableMessage, decode_send, encode
from events.commands import SendMessage
from events.references import client_ref
from services.dead_letters import DeadLetters
from services.kafka import FETCH_MAX_WAIT_MS, KafkaSettings
from services.kafka_security import client_options
from services.producer import Record, RecordsWriter, until_written
from services.sender.config import SenderConfig
from services.sender.ledger import Intent, Ledger, Outcome, Retrying
from services.sender.offsets import OffsetTracker
from services.sender.outcomes import Transient, outcome_event, unknown_event
from services.sender.provider import Provider, submit_with_retries
from services.sender.stalls import HEARTBEAT_INTERVAL_MS, SESSION_TIMEOUT_MS, StallWatch

log = logging.getLogger(__name__)

# The longest one poll for commands waits when none come: how soon a stopping
# sender notices (records end the wait at once). Shorter polls only woke an
# idle sender for nothing, five times a second.
IDLE_POLL_MS = 500

OUTCOME_UNKNOWN = (
    "outcome unknown after a sender stopped during the call: the provider may have "
    "accepted the message, so it is not sent again"
)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: SenderWorker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._worker.partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._worker.partitions_assigned(assigned)


class SenderWorker:
    def __init__(
        self,
        config: SenderConfig,
        settings: KafkaSettings,
        provider: Provider,
        producer: RecordsWriter,
        ledger: Ledger,
        *,
        shutdown_grace_s: float = 10.0,
    ) -> None:
        self._config = config
        self._settings = settings
        self._provider = provider
        self._producer = producer
        self._ledger = ledger
        self._shutdown_grace_s = shutdown_grace_s
        self._slots = asyncio.Semaphore(config.concurrency)
        # Each record with the tracker of the assignment it came in: the
        # partition is this sender's while that tracker is its current one.
        self._lanes: dict[bytes, deque[tuple[ConsumerRecord, OffsetTracker]]] = {}
        self._lane_tasks: set[asyncio.Task[None]] = set()
        self._trackers: dict[TopicPartition, OffsetTracker] = {}
        # Partitions being revoked: no new try is started for their commands.
        self._leaving: set[TopicPartition] = set()
        # Partitions whose commands may be handled: assigned, and the ledger
        # read up to where it stood then (see ``ready_records``).
        self._ready: set[TopicPartition] = set()
        self._became_ready = asyncio.Event()
        # Set (and replaced) when partitions start leaving, to wake backoffs.
        self._ownership_changed = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._stop = asyncio.Event()
        # Set (and replaced) whenever a record finishes, to wake waiters.
        self._finished = asyncio.Event()
        # After the process stood still long enough to be dropped from the
        # group, a call waits for the group to confirm it is still a member.
        self._stalls = StallWatch()
        self._stalls_confirmed = 0
        self._membership_probe = asyncio.Lock()

    # -- the loop ----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            **client_options(),
            group_id=self._config.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            client_id="dispatch-sender",
            # aiokafka's defaults, named: what a stall is judged against.
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        )
        self._consumer = consumer
        self._stop = stop
        await consumer.start()
        committer = asyncio.create_task(self._commit_periodically(), name="sender-commits")
        watch = asyncio.create_task(self._stalls.run(), name="sender-stall-watch")
        try:
            consumer.subscribe([self._settings.topics.send], listener=_Rebalance(self))
            log.info(
                "sender consuming %s as group %s", self._settings.topics.send, self._config.group
            )
            while not stop.is_set():
                batch = await consumer.getmany(
                    timeout_ms=IDLE_POLL_MS, max_records=self._config.concurrency
                )
                all_ready = self.ready_records(batch, consumer)
                for tp, records in batch.items():
                    for record in records:
                        if not await self._acquire_slot(stop):
                            break  # not started, so not committed: redelivered later
                        self._tracker(tp).started(record.offset)
                        self._enqueue(tp, record)
                if not all_ready:
                    # Not to fetch what was put back again at once, and again.
                    await self._until_ready(timeout=1.0)
        finally:
            # Stopping: sends between tries stop there (their successor goes
            # on from the ledger); calls in flight get the grace to finish.
            self._leave(list(self._trackers))
            await self._drain_lanes(self._shutdown_grace_s)
            committer.cancel()
            watch.cancel()
            await asyncio.gather(committer, watch, return_exceptions=True)
            await self._commit()
            await consumer.stop()

    def ready_records(
        self, batch: dict[TopicPartition, list[ConsumerRecord]], consumer: AIOKafkaConsumer
    ) -> bool:
        """Keep in ``batch`` only the records of ready partitions; put the
        others back (seek to the first) and return False if there were any.

        aiokafka fetches a partition from the moment it is assigned, while
        ``partitions_assigned`` still reads the ledger, and until the moment
        it is taken away, while ``partitions_revoked`` still waits. A command
        handled before the ledger is read could be sent again (its previous
        owner's intent not yet known); one handled during a revocation would
        be left to the next owner anyway."""
        unready = [tp for tp in batch if tp not in self._ready]
        for tp in unready:
            records = batch.pop(tp)
            if records and tp in consumer.assignment():
                consumer.seek(tp, records[0].offset)
        return not unready

    async def _until_ready(self, timeout: float) -> None:
        became_ready = self._became_ready
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await became_ready.wait()

    async def _acquire_slot(self, stop: asyncio.Event) -> bool:
        """Wait for a free slot, unless asked to stop first."""
        if stop.is_set():
            return False
        if not self._slots.locked():
            await self._slots.acquire()
            return True
        acquire = asyncio.ensure_future(self._slots.acquire())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if acquire.done() and not acquire.cancelled():
            if stop.is_set():
                self._slots.release()
                return False
            return True
        acquire.cancel()
        return False

    def _tracker(self, tp: TopicPartition) -> OffsetTracker:
        tracker = self._trackers.get(tp)
        if tracker is None:
            tracker = self._trackers[tp] = OffsetTracker()
        return tracker

    def _enqueue(self, tp: TopicPartition, record: ConsumerRecord) -> None:
        key: bytes = record.key or b""
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = deque()
            task = asyncio.create_task(self._run_lane(key, lane))
            self._lane_tasks.add(task)
            task.add_done_callback(self._lane_tasks.discard)
        lane.append((record, self._tracker(tp)))

    async def _run_lane(
        self, key: bytes, lane: deque[tuple[ConsumerRecord, OffsetTracker]]
    ) -> None:
        try:
            while lane:
                record, tracker = lane[0]
                tp = TopicPartition(record.topic, record.partition)
                done = True
                try:
                    done = await self._handle_record(record, tracker)
                except Exception as exc:
                    # A command whose handling raises would raise again after a
                    # restart (a restart loop holding up every later command):
                    # it is parked with the reason, and the lane goes on.
                    log.exception("could not handle command at %s@%s", tp, record.offset)
                    await self._dead_letter(record, f"handling failed: {exc!r}")
                if done:
                    lane.popleft()
                    tracker.finished(record.offset)
                    self._slots.release()
                else:
                    # The partition went to another sender, which goes on from
                    # the ledger: this record and the dispatch's later ones of
                    # the same assignment are left to it, in order (records
                    # of a later assignment, delivered again, stay).
                    kept = [entry for entry in lane if entry[1] is not tracker]
                    for left, _ in [entry for entry in lane if entry[1] is tracker]:
                        tracker.held(left.offset)
                        self._slots.release()
                    lane.clear()
                    lane.extend(kept)
                self._finished.set()
                self._finished = asyncio.Event()
        finally:
            # No await between the last check of ``lane`` and this: nothing can
            # be appended to a lane that is about to disappear.
            if self._lanes.get(key) is lane and not lane:
                del self._lanes[key]

    # -- one command -------------------------------------------------------------
    async def _handle_record(self, record: ConsumerRecord, tracker: OffsetTracker) -> bool:
        """Handle one command; False if it was left to the partition's next owner.
        ``tracker``: the one of the assignment the record came in."""
        if record.value is None:
            return True
        try:
            command = decode_send(record.value)
        except UndecodableMessage as exc:
            await self._dead_letter(record, str(exc))
            return True
        tp = TopicPartition(record.topic, record.partition)

        def holds() -> bool:
            # A revocation drops the partition's tracker once it ends; an
            # assignment after it starts a new one.
            return self._trackers.get(tp) is tracker

        return await self.handle(
            command,
            owns=lambda: tp not in self._leaving and holds(),
            holds=holds,
            still_member=lambda: self._still_member(tp, tracker),
        )

    async def _still_member(self, tp: TopicPartition, tracker: OffsetTracker) -> bool:
        """Whether the group still has this sender, asked only after the
        process stood still long enough to have been dropped (``stalls.py``):
        dropped, its partitions may be another sender's, which may have read
        the ledger before this intent and sent already."""
        if not self._stalls.stalled_since(self._stalls_confirmed):
            return True
        async with self._membership_probe:
            if not self._stalls.stalled_since(self._stalls_confirmed):
                return True  # confirmed by the probe this one waited for
            self._stalls.stamp()  # a stall still under way is counted, and so confirmed
            stalls = self._stalls.stalls
            consumer = self._consumer
            if consumer is None:
                return False
            # A commit names the group generation: refused if it moved on. The
            # offset is the first not settled, the one the committed offset is
            # at or behind: committed again, it skips nothing.
            try:
                await consumer.commit({tp: tracker.first_unsettled()})
            except KafkaError as exc:
                log.warning(
                    "stood still long enough to lose %s (%s): its calls are left to its next "
                    "owner, as unknown if their intents were written",
                    tp,
                    exc,
                )
                return False
            self._stalls_confirmed = stalls
            log.info("stood still, and the group still has this sender: sending on")
            return True

    async def _dead_letter(self, record: ConsumerRecord, reason: str) -> None:
        """Park a command that cannot be handled, with why and where it was."""
        await DeadLetters(self._producer, self._settings.topics.dead_letters).park(record, reason)

    async def handle(
        self,
        command: SendMessage,
        owns: Callable[[], bool] = lambda: True,
        holds: Callable[[], bool] = lambda: True,
        still_member: Callable[[], Awaitable[bool]] | None = None,
    ) -> bool:
        """Settle one command: call the provider, or answer from the ledger.
        False if it was left unsettled because its partition is going to
        another sender: ``owns()`` false (revoking: no new try starts),
        ``holds()`` false (revoked: another sender may have read the ledger)
        or ``still_member()`` false (the group dropped this sender while it
        stood still)."""
        command_id = command.event_id
        entry = self._ledger.get(command_id)
        event: Outcome
        if entry is None or isinstance(entry, Retrying):
            return await self._send(command, entry, owns, holds, still_member or _member)
        if isinstance(entry, Intent):
            log.warning(
                "command %s was in flight when a sender stopped; not sent again", command_id
            )
            event = unknown_event(command, OUTCOME_UNKNOWN, entry.started_at or utcnow())
            await self._until_kafka_ok(lambda: self._ledger.record_outcome(command_id, event))
        else:
            event = entry
        topic, key, value = self._event_record(command, event)
        await self._until_kafka_ok(lambda: self._producer.send_and_wait(topic, value, key=key))
        return True

    async def _send(
        self,
        command: SendMessage,
        resumed: Retrying | None,
        owns: Callable[[], bool],
        holds: Callable[[], bool],
        still_member: Callable[[], Awaitable[bool]],
    ) -> bool:
        command_id = command.event_id
        attempted_at = resumed.at if resumed is not None else utcnow()
        # When the last call began: an unknown outcome waits from then.
        call_at = attempted_at

        async def before_attempt(attempt: int) -> bool:
            nonlocal call_at
            # A try starts only while the partition is ours, and its call is
            # made once its intent is durable, unless the partition's
            # revocation ended meanwhile. A revocation waits (the grace) for
            # sends in flight, so until it ends no other sender can have read
            # the ledger; after, one may have read it without this intent,
            # and would call too. The same if the group dropped this sender
            # while it stood still: it has not been told of a revocation.
            if not owns():
                return False
            call_at = attempted_at if attempt == 1 else utcnow()
            await self._until_kafka_ok(
                lambda: self._ledger.record_intent(command_id, attempted_at, attempt, call_at)
            )
            return holds() and await still_member()

        async def after_refusal(attempts: int, answer: Transient) -> None:
            # Surely not accepted: a sender that dies now leaves "retrying",
            # and its successor goes on trying instead of calling it unknown.
            retrying = Retrying(attempted_at, attempts, answer.reason, answer.http_status)
            await self._until_kafka_ok(lambda: self._ledger.record_retrying(command_id, retrying))

        answer = await submit_with_retries(
            self._provider,
            command.message,
            client_ref(command.dispatch_uuid, command.step),
            budget_s=self._config.retry_budget_s,
            initial_s=self._config.retry_initial_s,
            max_s=self._config.retry_max_s,
            resumed=resumed,
            before_attempt=before_attempt,
            after_refusal=after_refusal,
            sleep=lambda seconds: self._back_off(seconds, owns),
        )
        if answer is None:
            log.info("command %s left to the partition's next owner", command_id)
            return False
        event = outcome_event(command, answer, call_at)
        # The ledger's outcome and the event in one write. If only the
        # outcome lands before we die, the redelivered command appends the
        # event from the ledger. If only the event lands (its partition's
        # write went through, the ledger's failed), the redelivered command
        # finds the intent and appends MessageOutcomeUnknown, which the fold
        # ignores for a step already submitted or failed. Never a second call.
        along = self._event_record(command, event)
        await self._until_kafka_ok(
            lambda: self._ledger.record_outcome(command_id, event, along_with=along)
        )
        return True

    async def _back_off(self, seconds: float, owns: Callable[[], bool]) -> None:
        """Sleep between tries, cut short when the partition starts leaving (the
        next try is then refused, and the revocation need not wait for it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while owns() and (left := deadline - loop.time()) > 0:
            changed = self._ownership_changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await changed.wait()

    def _event_record(self, command: SendMessage, event: Outcome) -> Record:
        return (self._settings.topics.events, str(command.dispatch_uuid).encode(), encode(event))

    async def _until_kafka_ok(self, write: Callable[[], Awaitable[object]]) -> None:
        """Retry a Kafka write until it is acknowledged: losing it is never an option."""
        await until_written(write, what="a sender record")

    # -- commits and rebalances --------------------------------------------------
    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._config.commit_interval_s)
            await self._commit()

    async def _commit(self, only: list[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        offsets: dict[TopicPartition, int] = {}
        for tp, tracker in self._trackers.items():
            if only is not None and tp not in only:
                continue
            offset = tracker.committable()
            if offset is not None:
                offsets[tp] = offset
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            log.warning("offset commit failed (%s); the records will be redelivered", exc)
            return
        for tp, offset in offsets.items():
            self._trackers[tp].mark_committed(offset)

    async def partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self._ready.difference_update(revoked)
        # No new call for these partitions' commands: a send between tries
        # stops there, and the next owner goes on from the ledger.
        self._leave(revoked)

        # Let calls in flight finish (bounded), so the next owner finds their
        # outcomes instead of bare intents.
        def busy() -> bool:
            return any(self._trackers[tp].in_flight for tp in revoked if tp in self._trackers)

        try:
            async with asyncio.timeout(self._shutdown_grace_s):
                while busy():
                    await self._finished.wait()
        except TimeoutError:
            log.warning("partitions revoked with sends still in flight")
        await self._commit(only=revoked)
        for tp in revoked:
            self._trackers.pop(tp, None)

    def _leave(self, partitions: list[TopicPartition]) -> None:
        self._leaving.update(partitions)
        self._ownership_changed.set()
        self._ownership_changed = asyncio.Event()

    async def partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self._leaving.difference_update(assigned)
        # A previous owner may have written intents we have not read yet.
        # Sending without them could send twice, so no command of these
        # partitions is handled until they are read (``ready_records``); the
        # broker may be away for a while (a restart), which is waited out
        # rather than ended with an exit.
        delay = 1.0
        while True:
            if self._stop.is_set():
                return  # stopping: these partitions' commands are left unread
            try:
                await self._ledger.catch_up(timeout=30.0)
                break
            except (TimeoutError, KafkaError, OSError) as exc:
                log.warning("could not catch up with the sender ledger (%r); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self._ready.update(assigned)
        self._became_ready.set()
        self._became_ready = asyncio.Event()
        log.info("sender assigned %s", sorted(tp.partition for tp in assigned))

    async def _drain_lanes(self, grace_s: float) -> None:
        if not self._lane_tasks:
            return
        _done, pending = await asyncio.wait(set(self._lane_tasks), timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _member() -> bool:
    return True
