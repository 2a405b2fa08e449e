"""The workflow the rules read is the gateway's validated model."""

from __future__ import annotations

import uuid

import pytest

from events.dispatch import WorkflowRequested
from services.failover.workflow import InvalidWorkflow, Workflow
from services.processor.engine import process
from tests.unit.processor.harness import Harness, item, workflow


def test_items_read_as_models_and_sent_as_the_client_wrote_them() -> None:
    steps = workflow(2, expiry=45, condition="read")
    wf = Workflow.requested(steps)
    assert wf.failover(0).expiry_time == 45
    assert wf[0].failover == wf.failover(0)
    assert wf.condition_statuses(0) == frozenset({"read"})
    assert wf.condition_statuses(1) == frozenset({"delivered", "read"})  # the last step
    assert wf.channel(1) == "whatsapp"
    assert wf.message(0) == {k: v for k, v in steps[0].items() if k != "failover"}


def test_a_part_that_does_not_validate_is_refused_where_it_is_read() -> None:
    broken = item()
    broken["failover"] = {"expiry_time": "soon", "condition_status": "delivered"}
    wf = Workflow.requested([broken, item()])
    with pytest.raises(InvalidWorkflow, match="step 0"):
        wf.failover(0)
    with pytest.raises(InvalidWorkflow):
        Workflow.requested([])


def test_the_processor_refuses_a_request_it_cannot_start_instead_of_failing() -> None:
    h = Harness()
    broken = item()
    broken["to"] = {"type": "carrier-pigeon", "number": "1"}
    event = WorkflowRequested(dispatch_uuid=uuid.uuid4(), application_id="a", workflow=[broken])
    result = process(h.stores, 0, 0, event, h.policy)
    assert result.rejected is not None and "does not validate" in result.rejected
    assert result.outputs == []
    assert h.stores.dispatches.get(str(event.dispatch_uuid)) is None
