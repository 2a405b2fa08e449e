"""One event in, outputs out: the failover rules (``services/failover``)
applied to the processor's stores, with the timers and the at-least-once
bookkeeping.

The faust agent hands every event of ``dispatch.events`` to :func:`process`
with its partition and offset; the stores are its tables (dicts in tests).

Redelivery: after a crash the tables may already hold the effects of events
that come again (changelog written, offset not committed), while the outputs
of those events may or may not have reached Kafka. A dispatch remembers the
highest offset folded into it; an event at or below it is not decided again
but *re-asserted*: the outputs implied by the current state are emitted again
with their deterministic ids, which every consumer drops as duplicates.
Ticks are handled the same way through the cursor's memory of what the last
few ticks fired.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import cast

from events.base import uuid_text
from events.codec import LogEvent
from events.dispatch import (
    MessageOutcomeUnknown,
    MessageStatusReceived,
    MessageSubmitted,
    Tick,
    WebhookAbandoned,
    WebhookAttemptFailed,
    WebhookDelivered,
)
from services.failover import deadlines
from services.failover.decide import (
    Output,
    Policy,
    decide,
    on_deadline,
    over_status_bound,
    reassert,
    reassert_timeout,
)
from services.failover.fold import apply
from services.failover.state import DispatchState
from services.failover.workflow import InvalidWorkflow
from services.processor import timers
from services.processor.state_codec import decode_state, encode_state
from services.processor.unit_of_work import Journal

Store = MutableMapping[str, bytes]


@dataclass
class Stores:
    """The processor's three tables, each behind a :class:`Journal` so that an
    input's writes can be rolled back (see ``unit_of_work``)."""

    dispatches: Store
    buckets: Store
    cursors: Store

    def __setattr__(self, name: str, value: Store) -> None:
        object.__setattr__(self, name, value if isinstance(value, Journal) else Journal(value))

    def _journals(self) -> tuple[Journal, Journal, Journal]:
        return cast(tuple[Journal, Journal, Journal], (self.dispatches, self.buckets, self.cursors))

    def savepoint(self) -> tuple[int, int, int]:
        a, b, c = self._journals()
        return a.savepoint(), b.savepoint(), c.savepoint()

    def rollback(self, savepoint: tuple[int, int, int] = (0, 0, 0)) -> None:
        for journal, mark in zip(self._journals(), savepoint, strict=True):
            journal.rollback(mark)
        timers.forget_cached_cursors()

    def commit(self) -> None:
        for journal in self._journals():
            journal.commit()


@dataclass
class Result:
    outputs: list[Output] = field(default_factory=list)
    # Why the event could not be used (the caller dead-letters it), if so.
    rejected: str | None = None
    # Deadlines fired by a tick, for the lateness metric.
    fired: list[datetime] = field(default_factory=list)
    # Timer entries of a tick that failed, each rolled back alone while the
    # others fired: (why, the entry as JSON) for the caller to dead-letter.
    failed_entries: list[tuple[str, bytes]] = field(default_factory=list)
    # A status past the message's bound (Policy.max_statuses_per_message).
    dropped_status: bool = False


def load(stores: Stores, dispatch_uuid: str) -> DispatchState | None:
    raw = stores.dispatches.get(dispatch_uuid)
    return decode_state(raw) if raw is not None else None


def save(stores: Stores, dispatch_uuid: str, state: DispatchState) -> None:
    stores.dispatches[dispatch_uuid] = encode_state(state)


def _without_offset(raw: bytes) -> bytes:
    # ``last_offset`` is the state's last field. Its key cannot occur earlier
    # unescaped: inside a JSON string its quotes would be escaped.
    return raw[: raw.rfind(b'"last_offset":')]


def _rewrite(stores: Stores, dispatch_uuid: str, raw: bytes) -> None:
    """Write a redelivered event's state again, unchanged. The local store is
    written before the changelog record is acknowledged, so after a crash it
    may hold a state the changelog never got; written again, its record goes
    out again, and a later restore from the changelog does not find the
    dispatch older than the offsets committed after this redelivery."""
    stores.dispatches[dispatch_uuid] = raw


def process(stores: Stores, partition: int, offset: int, event: LogEvent, policy: Policy) -> Result:
    """Fold one event: its writes and outputs take effect together or, when it
    raises, not at all (the stores are rolled back before the error goes on)."""
    try:
        if isinstance(event, Tick):
            result = _tick(stores, partition, offset, event, policy)
        else:
            result = _event(stores, partition, offset, event, policy)
    except BaseException:
        stores.rollback()
        raise
    stores.commit()
    return result


def _event(stores: Stores, partition: int, offset: int, event: LogEvent, policy: Policy) -> Result:
    assert not isinstance(event, Tick)
    dispatch_uuid = uuid_text(event.dispatch_uuid)
    raw_before = stores.dispatches.get(dispatch_uuid)
    if isinstance(event, WebhookDelivered | WebhookAbandoned | WebhookAttemptFailed):
        # Facts for the read models: the fold keeps nothing of them and no
        # decision follows (a saved state has taken every decision it calls
        # for), so the state is not even decoded. Two per dispatch or more.
        if raw_before is None:
            return Result(rejected=f"{event.type} for a dispatch never requested")
        return Result()
    state = decode_state(raw_before) if raw_before is not None else None
    if raw_before is not None and state is not None and offset <= state.last_offset:
        # Re-filing the timers too: the state may have reached the changelog
        # without the deadline index (a duplicate entry fires nothing twice).
        outputs = reassert(state, event, policy)
        _arm(stores, partition, outputs)
        _arm_submission(stores, partition, state)
        _rewrite(stores, dispatch_uuid, raw_before)
        return Result(outputs=outputs)
    if (
        isinstance(event, MessageStatusReceived)
        and state is not None
        and over_status_bound(state, event, policy.max_statuses_per_message)
    ):
        return Result(dropped_status=True)  # counted, not kept, not webhooked
    before_seen = len(state.seen) if state is not None else 0
    # Only a submission arms a deadline in the fold itself.
    submission = isinstance(event, MessageSubmitted | MessageOutcomeUnknown)
    armed_before = deadlines.armed_by_submission(state) if submission else None
    try:
        state = apply(state, event)
        if state is None:
            return Result(rejected=f"{event.type} for a dispatch never requested")
        outputs = decide(before_seen, state, event, policy)
    except InvalidWorkflow as exc:
        # A workflow the gateway would have refused: nothing of it is kept.
        return Result(rejected=str(exc))
    state.last_offset = offset
    if outputs or raw_before is None:
        save(stores, dispatch_uuid, state)
    else:
        # Nothing decided: written only if the fold changed the state (a
        # submission does). An echo of our own decision or a duplicate changes
        # nothing, and skipping the write (and its changelog record) is safe,
        # since a redelivery of this offset would only re-assert outputs with
        # known ids. Encoded once, with the new offset, compared without it.
        raw_after = encode_state(state)
        if _without_offset(raw_after) != _without_offset(raw_before):
            stores.dispatches[dispatch_uuid] = raw_after
    _arm(stores, partition, outputs)
    if submission and deadlines.armed_by_submission(state) != armed_before:
        _arm_submission(stores, partition, state)
    return Result(outputs=outputs)


def _arm(stores: Stores, partition: int, outputs: list[Output]) -> None:
    """File the deadlines that decisions carry (a step's guard, a last step's limit)."""
    for dispatch_uuid, step, deadline_at in deadlines.carried_by(outputs):
        timers.schedule(stores.buckets, stores.cursors, partition, dispatch_uuid, step, deadline_at)


def _arm_submission(stores: Stores, partition: int, state: DispatchState) -> None:
    """File the expiry the fold armed from a non-last step's submission."""
    due = deadlines.armed_by_submission(state)
    if due is not None:
        timers.schedule(stores.buckets, stores.cursors, partition, *due)


def _tick(stores: Stores, partition: int, offset: int, tick: Tick, policy: Policy) -> Result:
    if tick.partition != partition:
        return Result(rejected=f"tick for partition {tick.partition} read on {partition}")
    due, redelivered = timers.drain(stores.buckets, stores.cursors, partition, tick.now, offset)
    result = Result()
    fired: list[deadlines.Due] = []
    for entry in due:
        # Each entry is a unit of work of its own: one that fails is rolled
        # back and dead-lettered, and the entries after it still fire.
        savepoint = stores.savepoint()
        try:
            outputs = _fire(stores, partition, entry, tick, redelivered, policy)
        except Exception as exc:
            stores.rollback(savepoint)
            result.failed_entries.append((f"timer entry failed: {exc!r}", timers.entry_json(entry)))
            continue
        if outputs and not redelivered:
            fired.append(entry)
        result.outputs.extend(outputs)
    if not redelivered:
        timers.remember_fired(stores.cursors, partition, offset, fired)
    result.fired = [entry.deadline_at for entry in fired]
    return result


def _fire(
    stores: Stores,
    partition: int,
    entry: deadlines.Due,
    tick: Tick,
    redelivered: bool,
    policy: Policy,
) -> list[Output]:
    state = load(stores, entry.dispatch_uuid)
    if state is None:
        return []
    if redelivered:
        outputs = reassert_timeout(state, entry.step, tick.now, policy)
        if outputs:
            _arm(stores, partition, outputs)
            _arm_submission(stores, partition, state)
            save(stores, entry.dispatch_uuid, state)  # unchanged: see ``_rewrite``
        return outputs
    outputs = on_deadline(state, entry.step, entry.deadline_at, tick.now, policy)
    if outputs:
        save(stores, entry.dispatch_uuid, state)
        _arm(stores, partition, outputs)
    return outputs
