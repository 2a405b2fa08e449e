"""No input grows a dispatch's state past a fixed bound: a message keeps at
most N distinct statuses, and made-up message_uuids cannot add more."""

from __future__ import annotations

from datetime import timedelta

from events.dispatch import MessageStatusReceived, Usage
from services.failover.decide import Policy
from services.processor.engine import process
from tests.unit.processor.harness import Harness


def _flood(
    h: Harness, dispatch: object, message_uuid: str, count: int, step: int | None, start: int = 0
) -> int:
    dropped = 0
    for n in range(start, start + count):
        h.offset += 1
        event = MessageStatusReceived(
            dispatch_uuid=dispatch,  # type: ignore[arg-type]
            message_uuid=message_uuid,
            step=step,
            status="submitted",
            timestamp=h.now + timedelta(milliseconds=n),
            to={"type": "sms", "number": "447700900000"},
            from_={"type": "sms", "number": "447700900001"},
            usage=Usage(price=f"0.{n:05d}"),
        )
        result = process(h.stores, 0, h.offset, event, h.policy)
        h.outputs.extend(result.outputs)
        dropped += result.dropped_status
    return dropped


def test_a_message_keeps_at_most_n_distinct_statuses_and_webhooks_no_more() -> None:
    h = Harness(Policy(max_statuses_per_message=16))
    dispatch = h.request(steps=2)
    message = h.submitted(dispatch, 0)
    dropped = _flood(h, dispatch, message, 1_000, step=0)
    assert dropped == 1_000 - 16
    assert len(h.webhooks(dispatch, "status")) == 16
    size = len(h.stores.dispatches[str(dispatch)])
    # Another thousand new ones change nothing at all.
    assert _flood(h, dispatch, message, 1_000, step=0, start=1_000) == 1_000
    assert len(h.stores.dispatches[str(dispatch)]) == size
    # The dispatch still moves on: its deadline fails it over.
    h.tick(61)
    assert h.started_steps(dispatch) == [0, 1]


def test_made_up_message_uuids_cannot_grow_the_state_either() -> None:
    h = Harness(Policy(max_statuses_per_message=4))
    dispatch = h.request(steps=2)
    sizes = []
    for n in range(200):
        _flood(h, dispatch, f"forged-{n}", 4, step=None)
        sizes.append(len(h.stores.dispatches[str(dispatch)]))
    # Bounded: 4 per message, 4 x (steps + 1) in all.
    assert len(h.state(dispatch).seen) == 12
    assert sizes[-1] == sizes[10]
