"""What ``dispatch webhooks redeliver`` picks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from events.commands import DeliverWebhook
from services.webhooks.cli import select
from services.webhooks.state import DeliveryState, Phase, decode_state, encode_state

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def state(dispatch: uuid.UUID, phase: Phase, created: datetime, offset: int) -> DeliveryState:
    command = DeliverWebhook(
        dispatch_uuid=dispatch,
        application_id="app",
        kind="status",
        payload={"status": "delivered"},
        occurred_at=created,
    )
    return DeliveryState(
        command=command,
        source_partition=0,
        source_offset=offset,
        phase=phase,
        next_attempt_at=T0,
        updated_at=T0,
    )


D1, D2 = uuid.uuid4(), uuid.uuid4()
STATES = [
    state(D1, "delivered", T0, 1),
    state(D1, "abandoned", T0 + timedelta(hours=1), 2),
    state(D2, "abandoned", T0 + timedelta(hours=2), 3),
    state(D2, "pending", T0 + timedelta(hours=3), 4),
]


def test_filters_combine_and_pending_webhooks_are_left_alone() -> None:
    assert select(STATES, dispatch=D1, since=None, abandoned=False) == STATES[:2]
    assert select(STATES, dispatch=None, since=None, abandoned=True) == STATES[1:3]
    later = T0 + timedelta(minutes=90)
    assert select(STATES, dispatch=None, since=later, abandoned=False) == [STATES[2]]
    assert select(STATES, dispatch=D2, since=None, abandoned=False) == [STATES[2]]


def test_results_come_in_original_order() -> None:
    picked = select(list(reversed(STATES)), dispatch=None, since=None, abandoned=True)
    assert [s.source_offset for s in picked] == [2, 3]


def test_state_records_round_trip() -> None:
    assert decode_state(encode_state(STATES[1])) == STATES[1]
