"""A batch folds on from the views already in the store: split a dispatch's
history into any two batches and the result is the view of the whole."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable

from aiokafka import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st

from events.codec import encode
from projections.projector import decode_records, fold_records, project
from projections.store import HistoryRow
from projections.view import View, public
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


@given(st.integers(min_value=1, max_value=9))
def test_two_batches_end_where_one_does(split: int) -> None:
    dispatch = uuid.uuid4()
    records = _records(failover_history(dispatch))
    split = min(split, len(records) - 1)
    whole = fold_records(decode_records(records), {})

    first = fold_records(decode_records(records[:split]), {})
    second = fold_records(decode_records(records[split:]), first.views)

    assert second.views == whole.views
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
    assert second.views == whole.views
