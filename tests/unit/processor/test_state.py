"""A dispatch's state survives its round trip through the table, also when it
was written by a version that had fewer fields."""

from __future__ import annotations

import orjson

from services.failover.state import DispatchState, StepState
from services.failover.workflow import Workflow
from services.processor.state_codec import decode_state, encode_state
from tests.unit.processor.harness import workflow


def a_state() -> DispatchState:
    return DispatchState(
        dispatch_uuid="d-1",
        application_id="app-1",
        workflow=Workflow(workflow(2)),
        steps=[StepState(index=0, channel="sms", command_id="c-0", statuses=["submitted"])],
        seen=["m-0|submitted|t|"],
        last_offset=41,
    )


def test_a_state_decodes_to_what_was_encoded() -> None:
    state = a_state()
    decoded = decode_state(encode_state(state))
    assert decoded == state
    decoded.steps[0].statuses.append("delivered")  # a fresh copy: the original is untouched
    assert state.steps[0].statuses == ["submitted"]


def test_a_state_written_before_a_field_existed_gets_its_default() -> None:
    written = orjson.loads(encode_state(a_state()))
    del written["last_offset"]
    del written["steps"][0]["armed_on_submission"]
    decoded = decode_state(orjson.dumps(written))
    assert decoded.last_offset == -1
    assert decoded.steps[0].armed_on_submission is False
    assert decoded.steps[0].statuses == ["submitted"]
