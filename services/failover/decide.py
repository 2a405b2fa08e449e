"""``decide``: what follows from one event; ``reassert``: what already followed.

Pure: time enters only through event timestamps (and ``Tick.now`` via
:func:`on_deadline`), so tests skip time by feeding later events.

One step of the processor, for an event at a new offset::

    state = apply(state, event)
    outputs = decide(before_seen, state, event, policy)   # folds its own decisions

Decision events are folded into the state as they are taken, so when their
echo comes back from ``dispatch.events`` the fold treats it as a no-op. For an
event the state already reflects (a redelivery after a crash),
:func:`reassert` emits again the outputs the state implies, through the same
builders (:mod:`.factories`) and so with the same ids: downstream drops them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from events.codec import LogEvent
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import MessageSendFailed, MessageStatusReceived
from services.failover import factories
from services.failover.fold import apply, expiry_deadline
from services.failover.state import DispatchState, StepState
from services.failover.workflow import FAILED_STATUSES

Output = LogEvent | SendMessage | DeliverWebhook


@dataclass(frozen=True)
class Policy:
    """Configuration the decisions depend on (recorded in the events that carry
    a deadline, so a replay under another configuration still reproduces the
    same decisions)."""

    final_step_limit: timedelta = timedelta(hours=24)
    # Distinct statuses kept (and webhooked) per message; more are dropped, so
    # no input can grow a dispatch's state past a fixed bound.
    max_statuses_per_message: int = 16


def over_status_bound(state: DispatchState, event: MessageStatusReceived, per_message: int) -> bool:
    """Whether a new status would take the state past its bound: ``per_message``
    distinct statuses per message, and as many per step (plus one message's
    worth) in all, however many message_uuids a caller makes up. A status
    already folded is never over: it is a duplicate, re-asserted as usual."""
    key = factories.status_key(event)
    if key in state.seen:
        return False
    if len(state.seen) >= per_message * (len(state.workflow) + 1):
        return True
    prefix = event.message_uuid + "|"
    return sum(1 for seen in state.seen if seen.startswith(prefix)) >= per_message


def decide(before_seen: int, state: DispatchState, event: LogEvent, policy: Policy) -> list[Output]:
    """Outputs for ``event``, already folded into ``state`` (``before_seen`` is
    ``len(state.seen)`` before the fold: it tells a new status from a duplicate)."""
    outputs: list[Output] = []
    if isinstance(event, MessageStatusReceived) and len(state.seen) > before_seen:
        # Every status of every message, late ones included, goes to the client.
        # The key the fold just recorded for it (the first one past before_seen).
        outputs.append(factories.status_webhook(state, event, state.seen[before_seen]))
    if isinstance(event, MessageSendFailed):
        failed = state.step(event.step)
        # Reported like a status (rejected), even when the dispatch has moved on.
        if failed is not None and _failure_recorded_by(failed, event):
            outputs.append(factories.send_failure_webhook(state, failed))
    outputs.extend(advance(state, event.occurred_at, policy))
    return outputs


def on_deadline(
    state: DispatchState, step: int, deadline_at: datetime, now: datetime, policy: Policy
) -> list[Output]:
    """A tick at ``now`` found step ``step``'s deadline due. Ignored when the
    step is no longer waiting (a status won the race) or was re-armed."""
    current = state.current
    if (
        current is None
        or not state.waiting(step)
        or current.deadline_at != deadline_at
        or deadline_at > now
    ):
        return []
    timed_out = factories.step_timed_out(state, step, deadline_at, now)
    apply(state, timed_out)
    return [timed_out, *advance(state, now, policy)]


def advance(state: DispatchState, at: datetime, policy: Policy) -> list[Output]:
    """Take every decision the state now calls for, folding each as it is taken."""
    outputs: list[Output] = []
    while True:
        decided = _next_decision(state, at, policy)
        if not decided:
            return outputs
        for output in decided:
            if not isinstance(output, SendMessage | DeliverWebhook):
                apply(state, output)
        outputs.extend(decided)


def _next_decision(state: DispatchState, at: datetime, policy: Policy) -> list[Output]:
    if state.finished:
        return _usage_amendments(state, at)
    current = state.current
    if current is None:
        return list(factories.step_started(state, 0, at, at + policy.final_step_limit))
    if current.timed_out:
        return _step_failed(state, current, at, "expired", policy)
    verdict = verdict_of(state, current)
    if verdict == "met":
        return _finish(state, current.index, at, None)
    if verdict is not None:
        return _step_failed(state, current, at, verdict, policy)
    if current.submitted_at is not None and not current.armed_on_submission:
        return [_submission_timer(state, current, policy)]
    return []


def verdict_of(state: DispatchState, step: StepState) -> str | None:
    """``met``, the failure reason, or None while the step is undecided."""
    if step.send_failed is not None:
        return "send_failed"
    condition = state.workflow.condition_statuses(step.index)
    for status in step.statuses:
        if status in condition:
            return "met"
        if status in FAILED_STATUSES:
            return status
    return None


def decisive_status(state: DispatchState, step: StepState) -> str | None:
    """The first of the step's statuses that decides it: one that meets its
    condition or fails it. Later statuses change nothing."""
    condition = state.workflow.condition_statuses(step.index)
    for status in step.statuses:
        if status in condition or status in FAILED_STATUSES:
            return status
    return None


def step_phase(state: DispatchState, index: int) -> str:
    """What step ``index`` has come to, in the order the rules look at it:
    ``pending`` (not started), ``timed_out``, ``failed`` (the send failed), the
    status that decided it, ``submitted`` or ``started``."""
    step = state.step(index)
    if step is None:
        return "pending"
    if step.timed_out:
        return "timed_out"
    if step.send_failed is not None:
        return "failed"
    decided = decisive_status(state, step)
    if decided is not None:
        return decided
    return "submitted" if step.submitted_at is not None else "started"


def _step_failed(
    state: DispatchState, step: StepState, at: datetime, reason: str, policy: Policy
) -> list[Output]:
    if state.is_last(step.index):
        return _finish(state, step.index, at, reason)
    return list(factories.step_started(state, step.index + 1, at, at + policy.final_step_limit))


def _submission_timer(state: DispatchState, step: StepState, policy: Policy) -> Output:
    """A submitted step's deadline: a last step's limit (a decision: it depends
    on the configuration), or a non-last step's expiry in a state stored before
    the fold armed those itself. Re-asserted, it keeps the recorded deadline."""
    armed_at = step.submitted_at
    assert armed_at is not None
    if step.armed_on_submission and step.deadline_at is not None:
        deadline = step.deadline_at
    elif state.is_last(step.index):
        deadline = armed_at + policy.final_step_limit
    else:
        deadline = expiry_deadline(state, step.index, armed_at)
    reason: factories.TimerReason = "final_step_limit" if state.is_last(step.index) else "expiry"
    return factories.timer_scheduled(state, step.index, armed_at, deadline, reason)


def _finish(state: DispatchState, step: int, at: datetime, reason: str | None) -> list[Output]:
    decision = factories.outcome_decided(state, step, at, reason)
    apply(state, decision)
    # Folded here already so the report is built once, from the state at this moment.
    return [decision, factories.final_report(state)]


def _usage_amendments(state: DispatchState, at: datetime) -> list[Output]:
    reported = state.reported_usage
    changed = [
        (message_uuid, usage)
        for message_uuid, usage in state.usage.items()
        if reported.get(message_uuid) != usage["price"]
    ]
    if not changed:
        return []  # every event after the report asks; the total is summed only if needed
    total = state.total_usage()
    return [
        factories.usage_amended(state, message_uuid, usage, total, at)
        for message_uuid, usage in changed
    ]


def _failure_recorded_by(step: StepState, event: MessageSendFailed) -> bool:
    return step.send_failed is not None and step.send_failed.event_id == str(event.event_id)


# -- redelivery ---------------------------------------------------------------------


def reassert(state: DispatchState, event: LogEvent, policy: Policy) -> list[Output]:
    """Outputs implied by the state for an event it already reflects."""
    outputs: list[Output] = []
    if isinstance(event, MessageStatusReceived) and factories.status_key(event) in state.seen:
        outputs.append(factories.status_webhook(state, event))
    if isinstance(event, MessageSendFailed):
        failed = state.step(event.step)
        if failed is not None and failed.send_failed is not None:
            outputs.append(factories.send_failure_webhook(state, failed))
    return outputs + latest_decision(state, policy)


def reassert_timeout(
    state: DispatchState, step: int, now: datetime, policy: Policy
) -> list[Output]:
    """A redelivered tick: the timeout it fired, and what followed from it."""
    timed_out = state.step(step)
    if timed_out is None or not timed_out.timed_out:
        return []
    assert timed_out.deadline_at is not None
    return [
        factories.step_timed_out(state, step, timed_out.deadline_at, now),
        *latest_decision(state, policy),
    ]


def latest_decision(state: DispatchState, policy: Policy) -> list[Output]:
    """The outputs of the last decision the state reflects: the end of the
    dispatch, or the current step's start (with its send while unanswered),
    or a last step's limit. A non-last step's expiry is no decision: the
    caller re-files it from the state."""
    if state.finished:
        step = state.outcome_step if state.outcome_step is not None else len(state.steps) - 1
        report = factories.final_report(state)
        reason = None if state.outcome == "completed" else (state.outcome_reason or "error")
        return [factories.outcome_decided(state, step, report.occurred_at, reason), report]
    current = state.current
    if current is None:
        return []
    if current.submitted_at is None:
        started_at = current.started_at
        assert started_at is not None
        guard = current.deadline_at or started_at + policy.final_step_limit
        started, send = factories.step_started(state, current.index, started_at, guard)
        unanswered = current.message_uuid is None and current.send_failed is None
        return [started, send] if unanswered else [started]
    if current.deadline_at is not None and state.is_last(current.index):
        return [_submission_timer(state, current, policy)]
    return []
