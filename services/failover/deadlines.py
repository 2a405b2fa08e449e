"""The timer index's rules: which deadlines are armed, where one is filed, when it is due.

The processor keeps the index itself in its tables (``services/processor/timers.py``:
entries bucketed by partition and second, read by ticks); these are the
rules it applies, and the only notion of a deadline the rules know.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from events.base import uuid_text
from events.codec import LogEvent
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import StepStarted, TimerScheduled
from services.failover.state import DispatchState


class Due(NamedTuple):
    """One armed deadline: step ``step`` of a dispatch ends at ``deadline_at``
    unless something decides it first. (A tuple: the processor makes and
    compares a few per event.)"""

    dispatch_uuid: str
    step: int
    deadline_at: datetime


def carried_by(outputs: Iterable[LogEvent | SendMessage | DeliverWebhook]) -> list[Due]:
    """The deadlines decisions carry: a step's guard (``StepStarted``) and a
    last step's limit (``TimerScheduled``)."""
    return [
        Due(uuid_text(output.dispatch_uuid), output.step, output.deadline_at)
        for output in outputs
        if isinstance(output, TimerScheduled | StepStarted) and output.deadline_at is not None
    ]


def armed_by_submission(state: DispatchState | None) -> Due | None:
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
    return Due(state.dispatch_uuid, current.index, current.deadline_at)


def filing_second(deadline: datetime, last_tick_second: int | None) -> int:
    """The second whose bucket holds ``deadline``: its own, or, when a tick has
    already passed it, the last tick's (a bucket no tick reads again would
    never fire)."""
    second = math.floor(deadline.timestamp())
    if last_tick_second is not None and second < last_tick_second:
        return last_tick_second
    return second


def is_due(due: Due, now: datetime) -> bool:
    """A timer never fires early: only once a tick's time reaches its deadline."""
    return due.deadline_at <= now
