"""Duplicates, reorderings and at-least-once redelivery."""

from __future__ import annotations

import uuid

from events.dispatch import MessageStatusReceived, StepStarted, WebhookDelivered, WorkflowRequested
from services.processor.engine import process
from tests.unit.processor.harness import Harness


def test_a_status_before_message_submitted_with_its_step_decides_the_step() -> None:
    h = Harness()
    d = h.request(steps=2)
    h.status(d, "early-msg", "delivered", step=0)
    assert [r["status"] for r in h.final_reports(d)] == ["completed"]
    h.submitted(d, 0, message_uuid="early-msg")  # arrives afterwards: nothing new
    assert h.started_steps(d) == [0]
    assert len(h.final_reports(d)) == 1


def test_a_status_before_message_submitted_without_step_waits_for_its_message() -> None:
    h = Harness()
    d = h.request(steps=2)
    h.status(d, "early-msg", "rejected")
    assert h.started_steps(d) == [0]  # not yet attributable: held
    assert len(h.webhooks(d, "status")) == 1  # but the client hears of it at once
    h.submitted(d, 0, message_uuid="early-msg")
    assert h.started_steps(d) == [0, 1]


def test_a_status_of_an_unknown_message_is_webhooked_and_changes_nothing() -> None:
    h = Harness()
    d = h.request(steps=2)
    h.submitted(d, 0)
    h.status(d, "stranger", "rejected", step=7)
    assert h.started_steps(d) == [0]
    assert [x.payload["message_uuid"] for x in h.webhooks(d, "status")] == ["stranger"]


def test_duplicate_events_at_new_offsets_start_nothing_twice() -> None:
    h = Harness()
    d = h.request(steps=2)
    m = h.submitted(d, 0)
    h.submitted(d, 0, message_uuid=m)
    status = h.status(d, m, "rejected")
    h.feed(status)
    h.send_failed(d, 0)  # contradicts the submission: ignored
    m1 = h.submitted(d, 1)
    h.status(d, m1, "delivered")
    h.status(d, m1, "delivered", at=h.now)
    assert h.started_steps(d) == [0, 1]
    assert len(h.sends(d)) == 2
    assert len(h.webhooks(d, "final")) == 1
    assert len(h.webhooks(d, "status")) == 2


def test_echoes_of_the_processors_own_decisions_are_no_ops() -> None:
    h = Harness()
    d = h.request(steps=2)
    [started] = [o for o in h.outputs if isinstance(o, StepStarted)]
    before = h.state(d)
    assert h.feed(started) == []
    assert h.state(d).steps == before.steps


def test_a_redelivered_event_reasserts_the_same_outputs() -> None:
    h = Harness()
    d = h.request(steps=2)
    m = h.submitted(d, 0)
    first = h.status(d, m, "rejected")
    first_out = [o for o in h.outputs if getattr(o, "dispatch_uuid", None) == d]
    # Crash: the table kept the effects, the offset was not committed.
    offset, event = h.log[-1]
    assert event == first
    again = h.feed(first, offset=offset)
    ids = {o.event_id for o in first_out}
    assert again, "a redelivery re-emits what the state implies"
    assert {o.event_id for o in again} <= ids | {o.event_id for o in h.outputs}
    assert h.started_steps(d) == [0, 1]
    # The status webhook and the send of step 1 come again, with the same ids.
    assert {o.type for o in again} >= {"DeliverWebhook", "SendMessage"}


def test_a_redelivered_tick_reasserts_what_it_fired() -> None:
    h = Harness()
    d = h.request(steps=2, expiry=15)
    h.submitted(d, 0)
    fired = h.tick(15)
    offset, tick = h.log[-1]
    again = h.feed(tick, offset=offset)
    assert {o.event_id for o in fired} <= {o.event_id for o in again}
    assert h.started_steps(d) == [0, 1]


def test_a_redelivered_final_event_reasserts_the_one_final_report() -> None:
    h = Harness()
    d = h.request(steps=1)
    m = h.submitted(d, 0)
    h.status(d, m, "delivered")
    offset, event = h.log[-1]
    h.feed(event, offset=offset)
    hooks = h.webhooks(d, "final")
    assert len(hooks) == 2
    assert hooks[0] == hooks[1]
    assert len(h.final_reports(d)) == 1


def test_an_event_for_a_dispatch_never_requested_is_rejected_for_dead_letters() -> None:
    h = Harness()
    event = MessageStatusReceived(
        dispatch_uuid=uuid.uuid4(), message_uuid="m", status="delivered", timestamp=h.now
    )
    result = process(h.stores, 0, 0, event, h.policy)
    assert result.rejected is not None
    assert result.outputs == []


def test_a_second_workflow_requested_for_the_same_dispatch_changes_nothing() -> None:
    h = Harness()
    d = h.request(steps=2)
    h.feed(WorkflowRequested(dispatch_uuid=d, application_id="other", workflow=[{}]))
    assert h.state(d).application_id == "app-1"
    assert len(h.sends(d)) == 1


class RecordingStore(dict[str, bytes]):
    """A table that remembers which keys were written."""

    def __init__(self, data: dict[str, bytes]) -> None:
        super().__init__(data)
        self.written: list[str] = []

    def __setitem__(self, key: str, value: bytes) -> None:
        self.written.append(key)
        super().__setitem__(key, value)


def test_a_redelivered_event_writes_the_state_again_unchanged() -> None:
    # After a crash the local store may hold a state whose changelog record was
    # never acknowledged; writing it again sends that record again, so a later
    # restore from the changelog is not older than the committed offsets.
    h = Harness()
    d = h.request(steps=2)
    h.submitted(d, 0)
    offset, event = h.log[-1]
    before = dict(h.stores.dispatches)
    h.stores.dispatches = RecordingStore(before)
    h.feed(event, offset=offset)
    assert h.stores.dispatches.written == [str(d)]
    assert dict(h.stores.dispatches) == before


def test_a_redelivered_tick_writes_the_states_it_timed_out_again() -> None:
    h = Harness()
    d = h.request(steps=2, expiry=15)
    h.submitted(d, 0)
    h.tick(15)
    offset, tick = h.log[-1]
    before = dict(h.stores.dispatches)
    h.stores.dispatches = RecordingStore(before)
    h.feed(tick, offset=offset)
    assert str(d) in h.stores.dispatches.written
    assert dict(h.stores.dispatches) == before


def test_a_redelivered_submission_files_its_expiry_again() -> None:
    # Crash after the state reached the changelog but before the deadline
    # index did: the fold armed the expiry, and only a re-filing brings it back.
    h = Harness()
    d = h.request(steps=2, expiry=15)
    h.submitted(d, 0)
    offset, submitted = h.log[-1]
    h.stores.buckets.clear()
    h.stores.cursors.clear()
    assert h.feed(submitted, offset=offset) == []
    h.tick(15)
    assert h.started_steps(d) == [0, 1]


def test_a_duplicate_submission_files_no_second_expiry() -> None:
    h = Harness()
    d = h.request(steps=2, expiry=15)
    h.submitted(d, 0)
    filed = dict(h.stores.buckets)
    h.submitted(d, 0)  # the sender's retry, a new offset
    assert h.stores.buckets == filed


def test_webhook_deliveries_decide_nothing_and_leave_the_state_alone() -> None:
    h = Harness()
    d = h.request(steps=2)
    m = h.submitted(d, 0)
    h.status(d, m, "delivered")
    [report] = h.webhooks(d, "final")
    before = dict(h.stores.dispatches)
    delivered = WebhookDelivered(
        dispatch_uuid=d, webhook_id=report.event_id, kind="final", attempts=1, http_status=204
    )
    assert h.feed(delivered) == []
    assert h.stores.dispatches == before
    unknown = process(
        h.stores, 0, 99, delivered.model_copy(update={"dispatch_uuid": uuid.uuid4()}), h.policy
    )
    assert unknown.rejected == "WebhookDelivered for a dispatch never requested"
