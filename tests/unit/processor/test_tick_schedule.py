"""Which partitions a worker ticks: only those with a deadline that has come."""

from __future__ import annotations

from services.processor.tick_schedule import TickSchedule


def learnt(partition: int, *seconds: int) -> TickSchedule:
    schedule = TickSchedule()
    schedule.generation(1)
    schedule.learn(partition, seconds)
    return schedule


def test_a_partition_not_learnt_yet_is_ticked_every_time() -> None:
    schedule = TickSchedule()
    schedule.generation(1)
    assert schedule.due([0, 1], now_second=100) == [0, 1]


def test_an_empty_index_is_never_ticked() -> None:
    schedule = learnt(0)
    assert schedule.due([0], now_second=10**10) == []


def test_ticked_only_once_the_earliest_filed_second_has_come() -> None:
    schedule = learnt(0, 130, 115)
    assert schedule.due([0], now_second=114) == []
    assert schedule.due([0], now_second=115) == [0]


def test_a_second_filed_by_a_batch_is_ticked_when_it_comes() -> None:
    schedule = learnt(3)
    schedule.filed(3, 200)
    assert schedule.due([3], now_second=199) == []
    assert schedule.due([3], now_second=200) == [3]


def test_what_a_tick_drained_is_not_ticked_again() -> None:
    schedule = learnt(0, 100, 101, 160)
    # The tick at 101.4 drained everything below 101; 101's later entries wait.
    schedule.passed(0, next_second=101)
    assert schedule.due([0], now_second=101) == [0]
    schedule.passed(0, next_second=102)
    assert schedule.due([0], now_second=159) == []
    assert schedule.due([0], now_second=160) == [0]


def test_a_second_filed_again_after_it_passed_is_ticked_again() -> None:
    schedule = learnt(0, 100)
    schedule.passed(0, next_second=101)
    schedule.filed(0, 105)
    assert schedule.due([0], now_second=105) == [0]


def test_a_new_generation_forgets_what_was_learnt() -> None:
    # Another worker may have filed deadlines while it owned the partition.
    schedule = learnt(0)
    assert schedule.due([0], now_second=100) == []
    schedule.generation(2)
    assert schedule.due([0], now_second=100) == [0]
    schedule.generation(2)  # the same generation again changes nothing
    schedule.learn(0, [])
    assert schedule.due([0], now_second=100) == []


def test_until_learnt_a_partition_is_ticked_whatever_its_batches_filed() -> None:
    # What a batch files before the partition is learnt is in its store by
    # the time it is learnt (the store is written before the next batch).
    schedule = TickSchedule()
    schedule.generation(1)
    schedule.filed(0, 50)
    assert schedule.due([0], now_second=10) == [0]
    schedule.learn(0, [40, 50])
    assert schedule.due([0], now_second=39) == []
    assert schedule.due([0], now_second=50) == [0]


def test_only_the_given_partitions_are_considered() -> None:
    schedule = learnt(0, 10)
    schedule.learn(1, [10])
    assert schedule.due([1], now_second=20) == [1]
