"""The audit timeline says what each event meant for the dispatch."""

from __future__ import annotations

import uuid

import orjson

from events.codec import encode
from events.dispatch import TimerScheduled
from projections.audit import timeline
from tests.fixtures_events import failover_history


def test_a_submission_says_when_the_step_fails_over() -> None:
    events = [e for e in failover_history(uuid.uuid4()) if not isinstance(e, TimerScheduled)]
    history = [
        {
            "occurred_at": e.occurred_at.isoformat(),
            "type": e.type,
            "event": orjson.loads(encode(e)),
            "offset": n,
        }
        for n, e in enumerate(events)
    ]
    whats = [entry["what"] for entry in timeline(history)]
    first, last = (w for w, e in zip(whats, events, strict=True) if e.type == "MessageSubmitted")
    assert first == (
        "step 0: accepted by the provider as m-0; "
        "fails over at 2026-01-01T12:01:01+00:00 unless read by then"
    )
    # The last step has no failover.
    assert last == "step 1: accepted by the provider as m-1"
