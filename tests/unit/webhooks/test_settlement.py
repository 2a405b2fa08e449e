"""Offsets are committed up to the first command whose state is not yet durable."""

from __future__ import annotations

import uuid

from services.webhooks.settlement import Settlement


def test_commits_stop_at_the_first_unsettled_command_of_each_partition() -> None:
    settlement = Settlement(grace_s=1.0)
    first, second = uuid.uuid4(), uuid.uuid4()
    settlement.hold(0, 10, first, now=0.0)
    settlement.read(0, 11)  # a duplicate: nothing to record
    settlement.hold(0, 12, second, now=0.0)
    settlement.read(1, 5)
    assert settlement.committable() == {0: 10, 1: 6}

    settlement.settle(0, 12)  # a later one settling first moves nothing
    assert settlement.committable() == {0: 10, 1: 6}
    settlement.settle(0, 10)
    assert settlement.committable() == {0: 13, 1: 6}


def test_only_offsets_past_the_last_commit_are_offered() -> None:
    settlement = Settlement(grace_s=1.0)
    settlement.read(0, 0)
    settlement.read(1, 0)
    settlement.committed({0: 1, 1: 1})
    assert settlement.committable() == {}
    settlement.read(1, 1)
    assert settlement.committable() == {1: 2}
    assert settlement.committable([0]) == {}


def test_a_revoked_partition_is_forgotten_and_unknown_offsets_are_ignored() -> None:
    settlement = Settlement(grace_s=1.0)
    settlement.hold(3, 7, uuid.uuid4(), now=0.0)
    settlement.settle(3, 99)  # a retry's outcome: its command was settled long ago
    settlement.settle(4, 7)
    assert settlement.committable() == {3: 7}
    settlement.drop_partition(3)
    assert settlement.committable() == {}
    assert settlement.unsettled_count() == 0


def test_commands_past_the_grace_are_due_a_pending_record_once() -> None:
    settlement = Settlement(grace_s=1.0)
    old, young, concluding = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    settlement.hold(0, 1, old, now=10.0)
    settlement.hold(0, 2, concluding, now=10.2)
    settlement.hold(0, 3, young, now=10.8)
    settlement.busy(0, 2)  # its outcome is being written: no pending record

    assert settlement.overdue(now=11.5) == [(0, 1, old)]
    assert settlement.overdue(now=11.5) == []  # being written already
    assert settlement.overdue(now=12.0) == [(0, 3, young)]

    settlement.busy(0, 1, False)  # the write failed: due again
    assert settlement.overdue(now=12.0) == [(0, 1, old)]
    for offset in (1, 2, 3):
        settlement.settle(0, offset)
    assert settlement.committable() == {0: 4}
    assert settlement.overdue(now=100.0) == []
