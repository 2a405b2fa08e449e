"""One event in, outputs out: the fold, the decisions, the timers and the
at-least-once bookkeeping, over plain key-value stores.

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

from events.base import deterministic_id, uuid_of, uuid_text
from events.codec import LogEvent
from events.dispatch import (
    MessageOutcomeUnknown,
    MessageSendFailed,
    MessageStatusReceived,
    MessageSubmitted,
    StepStarted,
    StepTimedOut,
    Tick,
    TimerScheduled,
    WebhookAbandoned,
    WebhookAttemptFailed,
    WebhookDelivered,
    WorkflowCompleted,
    WorkflowFailed,
)
from services.processor import timers
from services.processor.decide import (
    Output,
    Policy,
    decide,
    final_report,
    on_deadline,
    send_failure_webhook,
    start_step,
    status_webhook,
    timer_event,
)
from services.processor.fold import apply, over_status_bound, status_key
from services.processor.state import DispatchState, decode_state, encode_state
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
    armed_before = _submission_deadline(state) if submission else None
    state = apply(state, event)
    if state is None:
        return Result(rejected=f"{event.type} for a dispatch never requested")
    outputs = decide(before_seen, state, event, policy)
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
    if submission and _submission_deadline(state) != armed_before:
        _arm_submission(stores, partition, state)
    return Result(outputs=outputs)


def _arm(stores: Stores, partition: int, outputs: list[Output]) -> None:
    """File the deadlines that decisions carry (a step's guard, a last step's limit)."""
    for output in outputs:
        if isinstance(output, TimerScheduled | StepStarted) and output.deadline_at is not None:
            timers.schedule(
                stores.buckets,
                stores.cursors,
                partition,
                uuid_text(output.dispatch_uuid),
                output.step,
                output.deadline_at,
            )


def _submission_deadline(state: DispatchState | None) -> tuple[int, str] | None:
    """The waiting step's deadline when its submission armed it in the fold (a
    non-last step's expiry): no decision event carries that one."""
    if state is None or state.finished:
        return None
    current = state.current
    if (
        current is None
        or current.timed_out
        or not current.armed_on_submission
        or current.deadline_at is None
        or state.is_last(current.index)
    ):
        return None
    return current.index, current.deadline_at


def _arm_submission(stores: Stores, partition: int, state: DispatchState) -> None:
    armed = _submission_deadline(state)
    if armed is not None:
        step, deadline = armed
        timers.schedule(
            stores.buckets,
            stores.cursors,
            partition,
            state.dispatch_uuid,
            step,
            datetime.fromisoformat(deadline),
            deadline,
        )


def _tick(stores: Stores, partition: int, offset: int, tick: Tick, policy: Policy) -> Result:
    if tick.partition != partition:
        return Result(rejected=f"tick for partition {tick.partition} read on {partition}")
    due, redelivered = timers.drain(stores.buckets, stores.cursors, partition, tick.now, offset)
    result = Result()
    fired: list[timers.Due] = []
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
    entry: timers.Due,
    tick: Tick,
    redelivered: bool,
    policy: Policy,
) -> list[Output]:
    state = load(stores, entry.dispatch_uuid)
    if state is None:
        return []
    if redelivered:
        outputs = _reassert_timeout(state, entry.step, tick.now, policy)
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


def _reassert_timeout(
    state: DispatchState, step: int, now: datetime, policy: Policy
) -> list[Output]:
    if step >= len(state.steps) or not state.steps[step].timed_out:
        return []
    deadline = state.steps[step].deadline_at
    assert deadline is not None
    timed_out = StepTimedOut(
        event_id=deterministic_id(state.dispatch_uuid, step, "timed-out"),
        dispatch_uuid=uuid_of(state.dispatch_uuid),
        occurred_at=now,
        step=step,
        deadline_at=datetime.fromisoformat(deadline),
        tick_at=now,
    )
    return [timed_out, *reassert_state(state, policy)]


def reassert(state: DispatchState, event: LogEvent, policy: Policy) -> list[Output]:
    """Outputs implied by the state for an event it already reflects."""
    outputs: list[Output] = []
    if isinstance(event, MessageStatusReceived) and status_key(event) in state.seen:
        outputs.append(status_webhook(state, event))
    if isinstance(event, MessageSendFailed) and event.step < len(state.steps):
        failed = state.steps[event.step]
        if failed.send_failed is not None:
            outputs.append(send_failure_webhook(state, failed))
    return outputs + reassert_state(state, policy)


def reassert_state(state: DispatchState, policy: Policy) -> list[Output]:
    """The current step's start (and timer), or the end of the dispatch."""
    if state.finished:
        return _reassert_finish(state)
    current = state.current
    if current is None:
        return []
    if current.submitted_at is None:
        # Started, not yet submitted: the StepStarted again (it carries the
        # guard deadline the state recorded, and re-files it), and the send
        # command unless the step has an answer already.
        started_at = datetime.fromisoformat(current.started_at or "")
        guard = current.deadline_at
        deadline = datetime.fromisoformat(guard) if guard else started_at + policy.final_step_limit
        started, send = start_step(state, current.index, started_at, deadline)
        unanswered = current.message_uuid is None and current.send_failed is None
        return [started, send] if unanswered else [started]
    if current.deadline_at is not None and state.is_last(current.index):
        # A last step's limit is a decision (it depends on the configuration);
        # a non-last step's expiry is re-filed from the state by the caller.
        return [timer_event(state, current, policy)]
    return []


def _reassert_finish(state: DispatchState) -> list[Output]:
    report = final_report(state)
    step = state.outcome_step if state.outcome_step is not None else len(state.steps) - 1
    decision: WorkflowCompleted | WorkflowFailed
    if state.outcome == "completed":
        decision = WorkflowCompleted(
            event_id=deterministic_id(state.dispatch_uuid, step, "completed"),
            dispatch_uuid=uuid_of(state.dispatch_uuid),
            occurred_at=report.occurred_at,
            step=step,
            message_uuid=state.steps[step].message_uuid if step < len(state.steps) else None,
        )
    else:
        decision = WorkflowFailed(
            event_id=deterministic_id(state.dispatch_uuid, step, "failed"),
            dispatch_uuid=uuid_of(state.dispatch_uuid),
            occurred_at=report.occurred_at,
            step=step,
            reason=state.outcome_reason or "error",
        )
    return [decision, report]
