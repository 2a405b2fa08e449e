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


def test_a_held_offset_is_never_committed_past_nor_waited_for() -> None:
    tracker = OffsetTracker()
    for offset in (3, 4, 5):
        tracker.started(offset)
    tracker.held(3)  # its partition went elsewhere mid-send
    tracker.finished(4)
    tracker.finished(5)
    assert tracker.in_flight == 0
    assert tracker.committable() == 3
