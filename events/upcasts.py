"""Upcasters: records of ``dispatch.events`` written in an older shape,
upgraded to today's as they are read.

Each event type has a current ``schema_version``; a record of an older one is
passed through the upcasters from its version up, one version at a time, and
only then validated. The rules, the read side and the replay therefore see
today's shapes alone. A record of a *newer* version than this code knows is
still refused (dead-lettered), never guessed at.

An upcaster takes one record, as parsed JSON, and returns it in the next
version's shape: it may use nothing but the record itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from events.base import deterministic_id

Record = dict[str, Any]

# A guard older StepStarted records did not carry: the processor's default
# final-step limit, the one it recorded in a TimerScheduled of its own then.
LEGACY_GUARD = timedelta(hours=24)


def _step_started_1_to_2(record: Record) -> Record:
    """Version 2 always carries the step's guard deadline. Version 1 did from
    some point on; before that, a separate TimerScheduled carried it."""
    if record.get("deadline_at") is None:
        started = datetime.fromisoformat(str(record["occurred_at"]).replace("Z", "+00:00"))
        record["deadline_at"] = (started + LEGACY_GUARD).isoformat()
    return record


def _timer_scheduled_1_to_2(record: Record) -> Record:
    """Version 1 recorded a step's guard as a TimerScheduled of reason
    ``final_step_limit``, told apart from a last step's limit only by its id;
    version 2 names it ``start_guard`` (and StepStarted carries the guard)."""
    guard_id = deterministic_id(record.get("dispatch_uuid"), record.get("step"), "start-timer")
    if record.get("reason") == "final_step_limit" and record.get("event_id") == str(guard_id):
        record["reason"] = "start_guard"
    return record


UPCASTERS: dict[tuple[str, int], Callable[[Record], Record]] = {
    ("StepStarted", 1): _step_started_1_to_2,
    ("TimerScheduled", 1): _timer_scheduled_1_to_2,
}
CURRENT_VERSION: dict[str, int] = {"StepStarted": 2, "TimerScheduled": 2}


def outdated(record: object) -> bool:
    """Whether ``record`` is of an event type and version an upcaster upgrades."""
    if not isinstance(record, dict):
        return False
    version = record.get("schema_version", 1)
    kind = record.get("type")
    return (
        isinstance(kind, str)
        and isinstance(version, int)
        and version < CURRENT_VERSION.get(kind, 1)
        and (kind, version) in UPCASTERS
    )


def upcast(record: Record) -> Record:
    """``record`` in its type's current shape (``outdated(record)`` holds)."""
    kind = record["type"]
    version = record.get("schema_version", 1)
    while version < CURRENT_VERSION[kind]:
        record = UPCASTERS[(kind, version)](record)
        version += 1
        record["schema_version"] = version
    return record
