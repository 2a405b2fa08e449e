"""A send whose outcome is unknown waits as if submitted; a status naming its
step (by client_ref) decides it, and without one its deadline does."""

from __future__ import annotations

from datetime import timedelta

from events.dispatch import MessageOutcomeUnknown, StepTimedOut
from services.failover.factories import command_id
from tests.unit.processor.harness import Harness


def _unknown(h: Harness, dispatch: object, step: int, attempted_ago_s: float = 0) -> None:
    h.feed(
        MessageOutcomeUnknown(
            dispatch_uuid=dispatch,  # type: ignore[arg-type]
            step=step,
            command_id=command_id(str(dispatch), step),
            attempted_at=h.now - timedelta(seconds=attempted_ago_s),
            reason="no answer from the provider",
            occurred_at=h.now,
        )
    )


def test_an_unknown_outcome_waits_and_a_status_by_client_ref_completes_the_step() -> None:
    h = Harness()
    dispatch = h.request(steps=2, expiry=60)
    _unknown(h, dispatch, 0, attempted_ago_s=10)
    state = h.state(dispatch)
    assert state.steps[0].outcome_unknown
    assert state.steps[0].message_uuid is None
    # Not failed over, not sent again, no webhook about it.
    assert h.started_steps(dispatch) == [0]
    assert h.webhooks(dispatch, "status") == []
    # The deadline counts from the attempt, not from when the outcome was known.
    assert state.steps[0].deadline_at == h.now + timedelta(seconds=50)
    h.status(dispatch, "msg-late", "delivered", step=0)
    assert h.state(dispatch).steps[0].message_uuid == "msg-late"
    (report,) = h.final_reports(dispatch)
    assert report["status"] == "completed"
    assert [m["message_uuid"] for m in report["_links"]["messages"]] == ["msg-late"]
    assert h.started_steps(dispatch) == [0]


def test_an_unknown_outcome_with_no_status_fails_over_at_its_deadline() -> None:
    h = Harness()
    dispatch = h.request(steps=2, expiry=60)
    _unknown(h, dispatch, 0)
    assert not [o for o in h.tick(59) if isinstance(o, StepTimedOut)]
    timed_out = [o for o in h.tick(1.5) if isinstance(o, StepTimedOut)]
    assert [t.step for t in timed_out] == [0]
    assert h.started_steps(dispatch) == [0, 1]


def test_a_status_that_beat_the_unknown_outcome_still_decides_the_step() -> None:
    h = Harness()
    dispatch = h.request(steps=2, expiry=60)
    h.status(dispatch, "msg-fast", "rejected", step=0)
    _unknown(h, dispatch, 0)
    assert h.started_steps(dispatch) == [0, 1]
    assert h.state(dispatch).steps[0].message_uuid == "msg-fast"


def test_an_unknown_outcome_after_the_submission_changes_nothing() -> None:
    # A sender that died after its event reached the log but before its
    # ledger's outcome did: the redelivered command appends an unknown outcome.
    h = Harness()
    dispatch = h.request(steps=2, expiry=60)
    h.submitted(dispatch, 0, "msg-1")
    before = h.state(dispatch).steps[0]
    outputs = h.feed(
        MessageOutcomeUnknown(
            dispatch_uuid=dispatch,
            step=0,
            command_id=command_id(str(dispatch), 0),
            attempted_at=h.now + timedelta(seconds=5),
            reason="no answer from the provider",
            occurred_at=h.now,
        )
    )
    after = h.state(dispatch).steps[0]
    assert outputs == []
    assert not after.outcome_unknown
    assert (after.message_uuid, after.deadline_at) == ("msg-1", before.deadline_at)
    h.status(dispatch, "msg-1", "delivered", step=0)
    (report,) = h.final_reports(dispatch)
    assert report["status"] == "completed"
    assert h.started_steps(dispatch) == [0]
