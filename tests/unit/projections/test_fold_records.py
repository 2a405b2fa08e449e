"""A batch folds on from the views already in the store: split a dispatch's
history into any two batches and the result is the view of the whole."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterable
from typing import Any

import orjson
import pytest
from aiokafka import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st

from events.codec import encode
from events.dispatch import MessageSubmitted
from projections import view as view_module
from projections.projector import decode_records, fold_records, project
from projections.store import HistoryRow
from projections.view import View, public, refold
from tests.fixtures_events import failover_history


def _records(events: list[object], first_offset: int = 0) -> list[ConsumerRecord]:
    return [
        ConsumerRecord(
            topic="dispatch.events",
            partition=2,
            offset=first_offset + index,
            timestamp=0,
            timestamp_type=0,
            key=None,
            value=encode(event),  # type: ignore[arg-type]
            checksum=None,
            serialized_key_size=0,
            serialized_value_size=0,
            headers=(),
        )
        for index, event in enumerate(events)
    ]


def _as_stored(views: dict[str, View]) -> dict[str, View]:
    """The views as a store writes them and reads them back (JSON)."""
    return {uuid: orjson.loads(orjson.dumps(view)) for uuid, view in views.items()}


@given(st.integers(min_value=1, max_value=9))
def test_two_batches_end_where_one_does(split: int) -> None:
    dispatch = uuid.uuid4()
    records = _records(failover_history(dispatch))
    split = min(split, len(records) - 1)
    whole = fold_records(decode_records(records), {})

    first = fold_records(decode_records(records[:split]), {})
    second = fold_records(decode_records(records[split:]), _as_stored(first.views))

    assert _as_stored(second.views) == _as_stored(whole.views)
    assert whole.views[str(dispatch)]["status"] == "completed"
    assert first.positions == {2: split} and second.positions == {2: len(records)}
    assert [h.offset for h in first.history + second.history] == list(range(len(records)))


def test_an_undecodable_record_is_skipped_but_read_past() -> None:
    dispatch = uuid.uuid4()
    records = _records(failover_history(dispatch)[:1])
    garbage = ConsumerRecord(**{**records[0].__dict__, "offset": 1, "value": b"{not json"})
    batch = fold_records(decode_records([*records, garbage]), {})
    assert batch.positions == {2: 2}
    assert [h.offset for h in batch.history] == [0]


class _StoreOfAnOlderProjector:
    """Views as a projector wrote them before the view kept the rules' state."""

    def __init__(self, views: dict[str, View], history: list[HistoryRow]) -> None:
        self._views = views
        self._history = history

    async def views(self, uuids: Iterable[str]) -> dict[str, View]:
        return {u: dict(self._views[u]) for u in uuids if u in self._views}

    async def history(self, dispatch_uuid: str) -> list[HistoryRow]:
        return [row for row in self._history if row.dispatch_uuid == dispatch_uuid]


def test_a_view_written_by_an_older_projector_is_folded_again_from_its_history() -> None:
    dispatch = uuid.uuid4()
    records = _records(failover_history(dispatch))
    whole = fold_records(decode_records(records), {})
    split = 5
    first = fold_records(decode_records(records[:split]), {})
    older = {u: public(v) for u, v in first.views.items()}  # no rules' state in it
    store = _StoreOfAnOlderProjector(older, first.history)
    second = asyncio.run(project(store, records[split:]))  # type: ignore[arg-type]
    assert _as_stored(second.views) == _as_stored(whole.views)


@given(st.lists(st.integers(min_value=0, max_value=9), max_size=4))
def test_a_batch_folded_at_once_shows_what_folding_event_by_event_shows(cuts: list[int]) -> None:
    # Two dispatches interleaved, cut into batches anywhere: each view is the
    # one the events give folded one at a time (``refold``).
    first, second = uuid.uuid4(), uuid.uuid4()
    pairs = zip(failover_history(first), failover_history(second), strict=True)
    events = [event for pair in pairs for event in pair]
    records = _records(events)
    bounds = sorted({0, *(c * 2 for c in cuts), len(records)})
    stored: dict[str, View] = {}
    for start, end in itertools.pairwise(bounds):
        stored.update(_as_stored(fold_records(decode_records(records[start:end]), stored).views))
    for dispatch in (first, second):
        folded_one_by_one = refold(failover_history(dispatch))
        assert folded_one_by_one is not None
        assert stored[str(dispatch)] == _as_stored({"": folded_one_by_one})[""]
        assert stored[str(dispatch)]["status"] == "completed"


def test_an_event_the_view_cannot_take_is_left_out_and_the_rest_folded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dispatch = uuid.uuid4()
    events = failover_history(dispatch)
    refused = [i for i, e in enumerate(events) if isinstance(e, MessageSubmitted)]
    real_fold = view_module.fold

    def fold_refusing_submissions(state: Any, event: Any) -> Any:
        if isinstance(event, MessageSubmitted):
            raise ValueError("cannot take it")
        return real_fold(state, event)

    monkeypatch.setattr(view_module, "fold", fold_refusing_submissions)
    rejected: list[tuple[ConsumerRecord, str]] = []
    batch = fold_records(decode_records(_records(events)), {}, rejected)

    reason = "not folded into the view: ValueError('cannot take it')"
    assert [(r.offset, why) for r, why in rejected] == [(offset, reason) for offset in refused]
    others = [e for e in events if not isinstance(e, MessageSubmitted)]
    assert batch.views[str(dispatch)] == refold(others)
    assert len(batch.history) == len(events)  # the history keeps every event


def test_the_view_written_is_the_view_rendered_byte_for_byte() -> None:
    # The store gets the rules' state as the codec encoded it, not parsed and
    # encoded again: the bytes written must be those of the rendered view.
    dispatch = uuid.uuid4()
    unpacked = None
    for event in failover_history(dispatch):
        if unpacked is None:
            unpacked = view_module.requested(event)  # type: ignore[arg-type]
        else:
            view_module.fold_into(unpacked, event)  # type: ignore[arg-type]
        assert orjson.dumps(view_module.pack_to_store(unpacked)) == orjson.dumps(
            view_module.pack(unpacked)
        )
