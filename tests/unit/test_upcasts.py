"""Records of older schema versions are upgraded as they are read; newer ones
are still refused."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest

from events.base import deterministic_id
from events.codec import UndecodableMessage, decode_event, encode
from events.dispatch import StepStarted, TimerScheduled
from tests.fixtures_events import T0

DISPATCH = uuid.UUID(int=7)


def _v1(event: StepStarted | TimerScheduled, **changes: object) -> bytes:
    record = orjson.loads(encode(event))
    record["schema_version"] = 1
    record.update(changes)
    return orjson.dumps({k: v for k, v in record.items() if v is not ...})


def _started(**kwargs: object) -> StepStarted:
    values: dict[str, object] = {
        "dispatch_uuid": DISPATCH,
        "step": 0,
        "channel": "sms",
        "command_id": uuid.uuid4(),
        "occurred_at": T0,
        "deadline_at": T0 + timedelta(hours=3),
    }
    values.update(kwargs)
    return StepStarted(**values)  # type: ignore[arg-type]


def test_a_step_started_without_its_guard_gets_the_default_limit() -> None:
    old = _v1(_started(), deadline_at=...)
    upgraded = decode_event(old)
    assert isinstance(upgraded, StepStarted)
    assert upgraded.schema_version == 2
    assert upgraded.deadline_at == T0 + timedelta(hours=24)


def test_a_step_started_with_its_guard_keeps_it() -> None:
    upgraded = decode_event(_v1(_started()))
    assert isinstance(upgraded, StepStarted)
    assert upgraded.deadline_at == T0 + timedelta(hours=3)


def _timer(event_id: uuid.UUID, reason: str) -> TimerScheduled:
    return TimerScheduled(
        event_id=event_id,
        dispatch_uuid=DISPATCH,
        step=0,
        deadline_at=T0 + timedelta(hours=24),
        reason=reason,  # type: ignore[arg-type]
        occurred_at=T0,
    )


def test_a_guard_recorded_as_its_own_timer_is_named_a_start_guard() -> None:
    guard = _timer(deterministic_id(str(DISPATCH), 0, "start-timer"), "final_step_limit")
    upgraded = decode_event(_v1(guard))
    assert isinstance(upgraded, TimerScheduled)
    assert upgraded.reason == "start_guard"


def test_a_last_steps_limit_stays_a_limit() -> None:
    limit = _timer(deterministic_id(str(DISPATCH), 0, "timer"), "final_step_limit")
    upgraded = decode_event(_v1(limit))
    assert isinstance(upgraded, TimerScheduled)
    assert upgraded.reason == "final_step_limit"
    assert encode(upgraded) == encode(limit)


def test_a_version_newer_than_this_code_is_refused() -> None:
    record = orjson.loads(encode(_started()))
    record["schema_version"] = 3
    with pytest.raises(UndecodableMessage):
        decode_event(orjson.dumps(record))


def test_an_old_record_still_broken_after_upgrading_is_refused() -> None:
    with pytest.raises(UndecodableMessage):
        decode_event(_v1(_started(), channel="carrier-pigeon"))
