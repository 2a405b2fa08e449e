"""The committed offset never passes a record still in flight."""

from __future__ import annotations

from services.sender.offsets import OffsetTracker


def test_nothing_to_commit_before_any_record() -> None:
    assert OffsetTracker().committable() is None


def test_commit_stops_at_the_oldest_record_in_flight() -> None:
    tracker = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.started(offset)
    tracker.finished(11)
    tracker.finished(12)
    assert tracker.committable() == 10  # 10 is still in flight: redeliver from it
    tracker.finished(10)
    assert tracker.committable() == 13


def test_an_offset_is_committed_once() -> None:
    tracker = OffsetTracker()
    tracker.started(5)
    tracker.finished(5)
    assert tracker.committable() == 6
    tracker.mark_committed(6)
    assert tracker.committable() is None
    tracker.started(6)
    assert tracker.committable() is None
    tracker.finished(6)
    assert tracker.committable() == 7
