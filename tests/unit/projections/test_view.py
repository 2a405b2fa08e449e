"""The workflow view shows what a user needs to see, and a replayed or
redelivered event never changes it twice."""

from __future__ import annotations

import uuid
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from events.dispatch import StepStarted, TimerScheduled
from projections.view import apply
from tests.fixtures_events import T0, failover_history, rejected_history


def fold(events: list[object]) -> dict[str, object] | None:
    view = None
    for event in events:
        view = apply(view, event)  # type: ignore[arg-type]
    return view


def test_failover_then_delivery_shows_steps_states_and_true_usage() -> None:
    dispatch = uuid.uuid4()
    view = fold(failover_history(dispatch))
    assert view is not None
    assert view["status"] == "completed"
    assert view["current_step"] == 1
    steps = view["steps"]
    assert [s["state"] for s in steps] == ["timed_out", "delivered"]  # type: ignore[index]
    assert [s["message_uuid"] for s in steps] == ["m-0", "m-1"]  # type: ignore[index]
    assert steps[0]["deadline_at"] == "2026-01-01T12:01:01+00:00"  # type: ignore[index]
    # The late price of the first message counts: 0.0333 + 0.05.
    assert view["usage"] == {"price": "0.0833", "currency": "EUR"}
    assert view["final_report"] == {"status": "completed", "delivered": True, "abandoned": False}


def test_a_step_not_yet_submitted_shows_the_guard_deadline_its_start_carried() -> None:
    dispatch = uuid.uuid4()
    requested, started, *_ = failover_history(dispatch)
    guarded = started.replace(deadline_at=T0 + timedelta(hours=24))
    assert isinstance(guarded, StepStarted)
    view = fold([requested, guarded])
    assert view is not None
    assert view["steps"][0]["state"] == "started"  # type: ignore[index]
    assert view["steps"][0]["deadline_at"] == "2026-01-02T12:00:00+00:00"  # type: ignore[index]


def test_immediate_send_failure_on_last_step_is_an_error() -> None:
    view = fold(rejected_history(uuid.uuid4()))
    assert view is not None
    assert view["status"] == "error"
    assert view["steps"][0]["state"] == "failed"  # type: ignore[index]
    assert view["steps"][0]["error"] == {"code": 1020, "reason": "Invalid params"}  # type: ignore[index]


def test_events_before_the_request_are_ignored() -> None:
    events = failover_history(uuid.uuid4())
    assert fold(events[1:3]) is None


@given(st.data())
def test_duplicated_events_change_nothing(data: st.DataObject) -> None:
    events = failover_history(uuid.UUID(int=7))
    # A redelivered event comes again some time after the original: each copy
    # is placed after its original, anywhere later in the sequence.
    copies: list[tuple[int, int]] = []  # (position in the original order, original index)
    for _ in range(data.draw(st.integers(0, 6))):
        index = data.draw(st.integers(0, len(events) - 1))
        copies.append((data.draw(st.integers(index + 1, len(events))), index))
    duplicated: list[object] = []
    for position in range(len(events) + 1):
        duplicated.extend(events[i] for at, i in copies if at == position)
        if position < len(events):
            duplicated.append(events[position])
    assert fold(duplicated) == fold(events)


def test_a_submission_alone_shows_a_non_last_steps_deadline() -> None:
    # The processor no longer writes a TimerScheduled for an expiry: the view
    # counts the deadline from the submission, as the fold does.
    dispatch = uuid.uuid4()
    history = [e for e in failover_history(dispatch) if not isinstance(e, TimerScheduled)]
    assert fold(history) == fold(failover_history(dispatch))
    submitted_only = fold(history[:3])
    assert submitted_only is not None
    assert submitted_only["steps"][0]["deadline_at"] == "2026-01-01T12:01:01+00:00"  # type: ignore[index]
    assert submitted_only["steps"][1]["deadline_at"] is None  # type: ignore[index]
