"""Property-based: random interleavings of statuses, timeouts, duplicates,
reorderings and redeliveries, for dispatches of 1 to 5 steps."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.codec import encode
from events.dispatch import StepStarted, UsageAmended
from services.failover.decide import Output, Policy
from services.failover.workflow import FAILED_STATUSES
from tests.unit.processor.harness import Harness

LIMIT = timedelta(seconds=100)
STATUSES = ["submitted", "delivered", "read", "rejected", "undeliverable"]


def run(
    steps: int,
    condition: str,
    actions: list[tuple[object, ...]],
    *,
    echoes: bool = False,
    dispatch: uuid.UUID | None = None,
) -> Harness:
    h = Harness(Policy(final_step_limit=LIMIT), echoes=echoes)
    d = h.request(steps=steps, expiry=15, condition=condition, dispatch=dispatch)
    for action in actions:
        kind = action[0]
        state = h.state(d)
        if kind == "submit" and state.current is not None:
            step = int(str(action[1])) % len(state.steps)
            h.submitted(d, step, message_uuid=f"m{step}")
        elif kind == "send_failed" and state.current is not None:
            h.send_failed(d, state.current.index)
        elif kind == "status":
            _, step, status, with_step, price = action
            h.status(
                d,
                f"m{step}",
                str(status),
                step=int(str(step)) if with_step else None,
                # A message has one price; some statuses carry it, some do not.
                price=f"0.0{step}5" if int(str(price)) % 2 else None,
            )
        elif kind == "tick":
            h.tick(float(str(action[1])))
        elif kind == "duplicate" and h.log:
            _, event = h.log[int(str(action[1])) % len(h.log)]
            h.feed(event)
        elif kind == "redeliver" and h.log:
            # A crash before the commit: everything from some offset comes again.
            start = int(str(action[1])) % len(h.log)
            for offset, event in list(h.log[start:]):
                h.feed(event, offset=offset)
    # Let every timer run out: each dispatch must end.
    for _ in range(steps + 1):
        h.tick(LIMIT.total_seconds() + 1)
    return h


actions = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.integers(0, 4)),
        st.tuples(st.just("send_failed")),
        st.tuples(
            st.just("status"),
            st.integers(0, 4),
            st.sampled_from(STATUSES),
            st.booleans(),
            st.integers(0, 9),
        ),
        st.tuples(st.just("tick"), st.sampled_from([0.5, 5.0, 14.0, 16.0, 120.0])),
        st.tuples(st.just("duplicate"), st.integers(0, 1000)),
        st.tuples(st.just("redeliver"), st.integers(0, 1000)),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.integers(1, 5),
    condition=st.sampled_from(["delivered", "read"]),
    actions=actions,
)
def test_failover_invariants(steps: int, condition: str, actions: list[tuple[object, ...]]) -> None:
    h = run(steps, condition, actions)
    [d] = {o.dispatch_uuid for o in h.sends_all()}
    state = h.state(d)

    # Steps start in order, one at a time, each once (one id per step).
    started = [o for o in h.outputs if isinstance(o, StepStarted)]
    assert h.started_steps(d) == list(range(len(state.steps)))
    assert len({o.event_id for o in started}) == len(state.steps)
    assert len({s.event_id for s in h.sends(d)}) == len(state.steps)

    # Step k+1 started only because step k failed or timed out.
    for step in state.steps[:-1]:
        failed = step.send_failed is not None or any(s in FAILED_STATUSES for s in step.statuses)
        assert step.timed_out or failed

    # Exactly one final report; its status follows the deciding step.
    [report] = h.final_reports(d)
    last = state.steps[-1]
    met = state.workflow.condition_statuses(last.index)
    decisive = [s for s in last.statuses if s in met or s in FAILED_STATUSES]
    completed = (
        not last.timed_out and last.send_failed is None and bool(decisive) and decisive[0] in met
    )
    assert report["status"] == ("completed" if completed else "error")
    if completed:
        assert not last.timed_out

    # The usage total (report, then amendments) is the sum of the prices seen.
    prices = {
        o.message_uuid: Decimal(o.usage.price)
        for _, o in h.log
        if o.type == "MessageStatusReceived" and o.usage is not None  # type: ignore[union-attr]
    }
    amendments = [o for o in h.outputs if isinstance(o, UsageAmended)]
    total = amendments[-1].total.price if amendments else report["usage"]["price"]
    assert Decimal(total) == sum(prices.values(), Decimal(0))


@settings(max_examples=60, deadline=None)
@given(
    steps=st.integers(1, 5),
    condition=st.sampled_from(["delivered", "read"]),
    actions=actions,
)
def test_replaying_the_same_events_gives_the_same_decisions(
    steps: int, condition: str, actions: list[tuple[object, ...]]
) -> None:
    first = run(steps, condition, actions)
    replay = Harness(Policy(final_step_limit=LIMIT))
    for offset, event in first.log:
        replay.feed(event, offset=offset)
    # Redelivery re-asserts outputs with the same ids and the same content...
    assert distinct(first.outputs) is not None
    # ...and the log alone reproduces every decision.
    assert distinct(replay.outputs) == distinct(first.outputs)


def distinct(outputs: list[Output]) -> dict[str, bytes] | None:
    """Outputs by id, in order of first appearance; None if one id had two contents."""
    by_id: dict[str, bytes] = {}
    for output in outputs:
        encoded = encode(output)
        if by_id.setdefault(str(output.event_id), encoded) != encoded:
            return None
    return by_id


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.integers(1, 5),
    condition=st.sampled_from(["delivered", "read"]),
    actions=actions,
)
def test_reading_back_its_own_decisions_changes_nothing(
    steps: int, condition: str, actions: list[tuple[object, ...]]
) -> None:
    # The processor skips its decisions when they come back on dispatch.events;
    # folding them instead must decide nothing and change no state.
    dispatch = uuid.uuid4()
    skipped = run(steps, condition, actions, dispatch=dispatch)
    folded = run(steps, condition, actions, echoes=True, dispatch=dispatch)
    assert distinct(folded.outputs) == distinct(skipped.outputs)
