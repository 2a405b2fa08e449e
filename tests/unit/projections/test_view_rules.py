"""The workflow view is the processor's own state of a dispatch, shown: for any
sequence of events it folds to the state the processor holds, and it shows
each step as the rules decided it."""

from __future__ import annotations

import uuid

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.view import PRIVATE, View, apply, public, render, state_of
from services.failover.state import DispatchState
from tests.unit.processor.harness import Harness
from tests.unit.processor.test_properties import actions, run


def view_of(h: Harness) -> View:
    """The view the projector folds from the log the processor wrote."""
    view: View | None = None
    for _, event in h.log:
        view = apply(view, event)
    assert view is not None
    return view


def without_offset(state: DispatchState) -> DispatchState:
    state.last_offset = -1  # how far the processor had read: not part of the dispatch
    return state


def test_a_step_rejected_then_delivered_shows_rejected_as_the_processor_failed_it_over() -> None:
    h = Harness(echoes=True)
    dispatch = h.request(steps=2)
    message = h.submitted(dispatch, 0)
    h.status(dispatch, message, "rejected", step=0)
    # A later status changes nothing: the first decisive one decided the step.
    h.status(dispatch, message, "delivered", step=0)
    assert h.started_steps(dispatch) == [0, 1]
    view = view_of(h)
    assert [s["state"] for s in view["steps"]] == ["rejected", "started"]
    assert view["status"] == "in_progress" and view["current_step"] == 1
    # Both statuses are still listed for the user.
    assert [e["status"] for e in view["steps"][0]["statuses"]] == ["rejected", "delivered"]


def test_the_api_shows_the_view_without_the_rules_state() -> None:
    h = Harness(echoes=True)
    dispatch = h.request(steps=1)
    h.submitted(dispatch, 0)
    shown = public(view_of(h))
    assert PRIVATE not in shown
    assert shown["steps"][0]["state"] == "submitted"
    assert orjson.loads(orjson.dumps(shown)) == shown  # plain JSON


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.integers(1, 4),
    condition=st.sampled_from(["delivered", "read"]),
    actions=actions,
)
def test_the_view_folds_to_the_processors_state(
    steps: int, condition: str, actions: list[tuple[object, ...]]
) -> None:
    h = run(steps, condition, actions, echoes=True, dispatch=uuid.UUID(int=5))
    processor = h.state(uuid.UUID(int=5))
    view = view_of(h)
    folded = state_of(view)
    assert without_offset(folded) == without_offset(processor)
    # What the user sees is the processor's state rendered.
    extras = view[PRIVATE]["extras"]
    assert public(view) == public(render(processor, extras))
    assert view["status"] == (processor.outcome or "in_progress")
    # Every step the processor moved on from shows why; a completing step shows
    # the status that met its condition, whatever came after it.
    shown = view["steps"]
    for step in processor.steps[:-1]:
        assert shown[step.index]["state"] in ("timed_out", "failed", "rejected", "undeliverable")
    if processor.outcome == "completed":
        assert processor.outcome_step is not None
        assert shown[processor.outcome_step]["state"] in ("delivered", "read")
