"""An input takes effect whole or not at all; one failing timer entry never
drops the others due with it."""

from __future__ import annotations

import uuid

import orjson
import pytest

from events.dispatch import StepTimedOut, Tick
from services.processor.engine import process
from services.processor.unit_of_work import Journal
from tests.unit.processor.harness import Harness


class FailingWrites(dict[str, bytes]):
    """A store whose writes of one key raise (a bug, a corrupt value)."""

    def __init__(self, data: dict[str, bytes], poisoned: str) -> None:
        super().__init__(data)
        self.poisoned = poisoned

    def __setitem__(self, key: str, value: bytes) -> None:
        if key == self.poisoned:
            raise RuntimeError("poisoned write")
        super().__setitem__(key, value)


def test_a_journal_rolls_back_to_a_savepoint_newest_write_first() -> None:
    journal = Journal({"a": b"1"})
    journal["a"] = b"2"
    mark = journal.savepoint()
    journal["a"] = b"3"
    journal["b"] = b"new"
    del journal["a"]
    journal.rollback(mark)
    assert dict(journal) == {"a": b"2"}
    journal.rollback()
    assert dict(journal) == {"a": b"1"}
    journal["c"] = b"kept"
    journal.commit()
    journal.rollback()
    assert dict(journal) == {"a": b"1", "c": b"kept"}


def test_one_failing_timer_entry_among_a_hundred_due_leaves_the_others_firing() -> None:
    h = Harness()
    dispatches = [h.request(steps=2, expiry=60) for _ in range(100)]
    for dispatch in dispatches:
        h.submitted(dispatch, 0)
    poisoned = dispatches[37]
    before = h.stores.dispatches[str(poisoned)]
    h.stores.dispatches = FailingWrites(dict(h.stores.dispatches), str(poisoned))
    h.now = h.now.replace(minute=h.now.minute + 2)
    h.offset += 1
    result = process(h.stores, 0, h.offset, Tick(partition=0, now=h.now), h.policy)

    timed_out = {o.dispatch_uuid for o in result.outputs if isinstance(o, StepTimedOut)}
    assert len(timed_out) == 99 and poisoned not in timed_out
    # Every other dispatch moved on to its second step.
    assert {o.dispatch_uuid for o in result.outputs if o.type == "SendMessage"} == timed_out
    # The failed entry is handed back to be dead-lettered, with nothing of it kept.
    assert len(result.failed_entries) == 1
    reason, entry = result.failed_entries[0]
    assert "poisoned write" in reason
    assert orjson.loads(entry)[:2] == [str(poisoned), 0]
    assert h.stores.dispatches[str(poisoned)] == before
    assert not [o for o in result.outputs if getattr(o, "dispatch_uuid", None) == poisoned]


def test_an_event_whose_handling_raises_leaves_no_write_behind() -> None:
    h = Harness()
    dispatch = h.request(steps=2, expiry=60)
    buckets_before = dict(h.stores.buckets)
    cursors_before = dict(h.stores.cursors)
    state_before = h.stores.dispatches[str(dispatch)]
    # The submission arms a deadline (buckets, cursor) before saving the state.
    h.stores.dispatches = FailingWrites(dict(h.stores.dispatches), str(dispatch))
    with pytest.raises(RuntimeError, match="poisoned write"):
        h.submitted(dispatch, 0)
    assert dict(h.stores.buckets) == buckets_before
    assert dict(h.stores.cursors) == cursors_before
    assert h.stores.dispatches[str(dispatch)] == state_before


def test_the_stores_wrap_whatever_they_are_given() -> None:
    h = Harness()
    h.stores.buckets = {}
    assert isinstance(h.stores.buckets, Journal)
    dispatch = h.request(steps=2)
    assert isinstance(uuid.UUID(str(dispatch)), uuid.UUID)
