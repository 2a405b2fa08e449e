"""The deadline index: buckets by (partition, second), drained by ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.processor import timers

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class CountingStore(dict[str, bytes]):
    """Counts reads, to show a tick reads only what is due."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        self.reads += 1
        return super().get(key, default)


def test_a_tick_fires_only_due_entries_and_keeps_the_rest() -> None:
    buckets, cursors = CountingStore(), CountingStore()
    for n, seconds in enumerate([1.2, 1.7, 3.0, 90_000.0]):
        timers.schedule(buckets, cursors, 0, f"d{n}", 0, T0 + timedelta(seconds=seconds))
    due, _ = timers.drain(buckets, cursors, 0, T0 + timedelta(seconds=1.5), tick_offset=1)
    assert [d.dispatch_uuid for d in due] == ["d0"]
    due, _ = timers.drain(buckets, cursors, 0, T0 + timedelta(seconds=3), tick_offset=2)
    assert sorted(d.dispatch_uuid for d in due) == ["d1", "d2"]
    buckets.reads = 0
    due, _ = timers.drain(buckets, cursors, 0, T0 + timedelta(seconds=4), tick_offset=3)
    assert due == []
    # One second elapsed since the last tick: two seconds looked at, not every timer.
    assert buckets.reads <= 3
    assert len(buckets) == 2  # only the far-away timer is left (its entry and count)


def test_partitions_keep_separate_indexes() -> None:
    buckets: dict[str, bytes] = {}
    cursors: dict[str, bytes] = {}
    timers.schedule(buckets, cursors, 0, "a", 0, T0)
    timers.schedule(buckets, cursors, 1, "b", 0, T0)
    due0, _ = timers.drain(buckets, cursors, 0, T0, tick_offset=5)
    assert [d.dispatch_uuid for d in due0] == ["a"]
    due1, _ = timers.drain(buckets, cursors, 1, T0, tick_offset=5)
    assert [d.dispatch_uuid for d in due1] == ["b"]


def test_a_deadline_behind_the_last_tick_fires_on_the_next_tick() -> None:
    buckets: dict[str, bytes] = {}
    cursors: dict[str, bytes] = {}
    timers.drain(buckets, cursors, 0, T0 + timedelta(seconds=100), tick_offset=1)
    timers.schedule(buckets, cursors, 0, "late", 0, T0)
    due, _ = timers.drain(buckets, cursors, 0, T0 + timedelta(seconds=100.5), tick_offset=2)
    assert [d.dispatch_uuid for d in due] == ["late"]


def test_an_earlier_deadline_armed_before_any_tick_is_not_delayed() -> None:
    buckets: dict[str, bytes] = {}
    cursors: dict[str, bytes] = {}
    timers.schedule(buckets, cursors, 0, "later", 0, T0 + timedelta(seconds=50))
    timers.schedule(buckets, cursors, 0, "sooner", 0, T0 + timedelta(seconds=20))
    due, _ = timers.drain(buckets, cursors, 0, T0 + timedelta(seconds=20), tick_offset=1)
    assert [d.dispatch_uuid for d in due] == ["sooner"]


def test_a_redelivered_tick_returns_what_it_fired_and_changes_nothing() -> None:
    buckets: dict[str, bytes] = {}
    cursors: dict[str, bytes] = {}
    timers.schedule(buckets, cursors, 0, "a", 0, T0)
    due, redelivered = timers.drain(buckets, cursors, 0, T0, tick_offset=7)
    assert not redelivered
    timers.remember_fired(cursors, 0, 7, due)
    again, redelivered = timers.drain(buckets, cursors, 0, T0, tick_offset=7)
    assert redelivered
    assert again == due


def test_a_second_with_thousands_of_timers_is_a_few_records_fired_at_once() -> None:
    buckets: dict[str, bytes] = {}
    cursors: dict[str, bytes] = {}
    for n in range(2000):
        timers.schedule(buckets, cursors, 0, f"d{n}", 0, T0 + timedelta(milliseconds=n / 4))
    # Every record is also a changelog message: chunks, not one per timer.
    assert len(buckets) == 1 + -(-2000 // timers.CHUNK)
    due, _ = timers.drain(buckets, cursors, 0, T0 + timedelta(seconds=1), tick_offset=1)
    assert sorted(d.dispatch_uuid for d in due) == sorted(f"d{n}" for n in range(2000))
    assert buckets == {}


def test_half_a_second_fired_keeps_the_other_half_for_the_next_tick() -> None:
    buckets: dict[str, bytes] = {}
    cursors: dict[str, bytes] = {}
    for n in range(200):
        timers.schedule(buckets, cursors, 0, f"d{n}", 0, T0 + timedelta(milliseconds=5 * n))
    first, _ = timers.drain(buckets, cursors, 0, T0 + timedelta(milliseconds=500), tick_offset=1)
    second, _ = timers.drain(buckets, cursors, 0, T0 + timedelta(seconds=1), tick_offset=2)
    assert [d.dispatch_uuid for d in first] == [f"d{n}" for n in range(101)]
    assert [d.dispatch_uuid for d in second] == [f"d{n}" for n in range(101, 200)]
    assert all(d.deadline_at <= T0 + timedelta(milliseconds=500) for d in first)


def test_a_burst_is_remembered_in_bounded_records_and_only_for_recent_ticks() -> None:
    buckets: dict[str, bytes] = {}
    cursors: dict[str, bytes] = {}
    burst = 3 * timers.FIRED_CHUNK + 7
    for n in range(burst):
        timers.schedule(buckets, cursors, 0, f"burst-{n}", 1, T0)
    due, _ = timers.drain(buckets, cursors, 0, T0, tick_offset=10)
    timers.remember_fired(cursors, 0, 10, due)
    # A record stays far below Kafka's 1 MB message limit however large the burst.
    assert max(len(v) for v in cursors.values()) < 100_000
    again, redelivered = timers.drain(buckets, cursors, 0, T0, tick_offset=10)
    assert redelivered and again == due
    # Later ticks that fire push the burst out of memory, and its records go.
    for offset in range(11, 11 + timers.REMEMBERED_TICKS):
        timers.schedule(buckets, cursors, 0, f"later-{offset}", 0, T0)
        fired, _ = timers.drain(buckets, cursors, 0, T0, tick_offset=offset)
        timers.remember_fired(cursors, 0, offset, fired)
    assert not any(key.startswith("0:fired:10:") for key in cursors)
    assert len(cursors) == 1 + timers.REMEMBERED_TICKS
    assert timers.drain(buckets, cursors, 0, T0, tick_offset=10) == ([], True)
