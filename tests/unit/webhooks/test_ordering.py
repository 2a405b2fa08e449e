"""A final report waits for the status webhooks that preceded it, and only those."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from events.commands import DeliverWebhook
from services.webhooks.finished import FinishedWebhooks
from services.webhooks.ordering import OrderGate
from services.webhooks.state import DeliveryState

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def state(dispatch: uuid.UUID, kind: str, offset: int, attempts: int = 0) -> DeliveryState:
    command = DeliverWebhook(
        dispatch_uuid=dispatch,
        application_id="app",
        kind=kind,  # type: ignore[arg-type]
        payload={},
    )
    return DeliveryState(
        command=command,
        source_partition=0,
        source_offset=offset,
        attempts=attempts,
        next_attempt_at=NOW,
        updated_at=NOW,
    )


def test_final_is_held_until_every_earlier_status_was_attempted() -> None:
    gate = OrderGate()
    dispatch = uuid.uuid4()
    first, second, final = (
        state(dispatch, "status", 1),
        state(dispatch, "status", 2),
        state(dispatch, "final", 3),
    )
    for s in (first, second, final):
        gate.track(s)
    assert gate.admit(first) and gate.admit(second)
    assert not gate.admit(final)
    assert gate.attempted(second) == []
    assert gate.attempted(first) == [final]
    assert gate.admit(final)


def test_later_statuses_other_dispatches_and_retried_statuses_do_not_hold_it() -> None:
    gate = OrderGate()
    dispatch = uuid.uuid4()
    late_status = state(dispatch, "status", 9)
    other = state(uuid.uuid4(), "status", 1)
    already_tried = state(dispatch, "status", 2, attempts=1)
    for s in (late_status, other, already_tried):
        gate.track(s)
    assert gate.admit(state(dispatch, "final", 5))


def test_forgetting_a_partition_drops_its_bookkeeping() -> None:
    gate = OrderGate()
    dispatch = uuid.uuid4()
    status, final = state(dispatch, "status", 1), state(dispatch, "final", 2)
    gate.track(status)
    assert not gate.admit(final)
    gate.forget_partition(0)
    assert gate.attempted(status) == []
    assert gate.admit(final)


def test_finished_webhooks_are_remembered_for_the_retention_window_only() -> None:
    finished = FinishedWebhooks(retention_s=100)
    old, recent = uuid.uuid4(), uuid.uuid4()
    finished.add(0, old, 0, finished_at=1_000)
    finished.add(0, recent, 2, finished_at=1_050)
    assert finished.round_of(0, recent) == 2
    assert finished.round_of(1, recent) is None  # another partition's business
    assert finished.prune(now=1_120) == 1
    assert finished.round_of(0, old) is None and finished.round_of(0, recent) == 2
    finished.drop_partition(0)
    assert len(finished) == 0
