"""Which command offsets the deliverer may commit. Pure bookkeeping, no I/O.

A command is *settled* once a state record for it is durable: the outcome of
its first attempt, or a ``pending`` record written when that attempt has not
concluded within a grace period. Commands with nothing to record (duplicates,
tombstones, parked in the dead-letter topic) are settled as soon as they are
read. A partition's offset may be committed up to, never past, its first
unsettled command: after a crash or a rebalance, whoever owns the partition
next reads every unsettled command again (and drops the ones it finds finished
in the state topic).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass
class _Unsettled:
    webhook_id: uuid.UUID
    read_at: float
    # Its first attempt is concluding or a pending record is being written:
    # not to be picked for a pending record (again) meanwhile.
    busy: bool = False


@dataclass
class _Partition:
    read_up_to: int = -1  # offset after the last command read; -1 before the first
    committed: int = -1
    # offset -> command; offsets are added in increasing order, so the first
    # key is always the lowest unsettled offset and the oldest read.
    unsettled: dict[int, _Unsettled] = field(default_factory=dict)


class Settlement:
    def __init__(self, grace_s: float) -> None:
        self._grace_s = grace_s
        self._partitions: dict[int, _Partition] = {}

    def _of(self, partition: int) -> _Partition:
        found = self._partitions.get(partition)
        if found is None:
            found = self._partitions[partition] = _Partition()
        return found

    # -- commands read and settled --------------------------------------------------
    def read(self, partition: int, offset: int) -> None:
        """A command was read and needs nothing more to be settled."""
        entry = self._of(partition)
        entry.read_up_to = max(entry.read_up_to, offset + 1)

    def hold(self, partition: int, offset: int, webhook_id: uuid.UUID, now: float) -> None:
        """A command was read and is settled only once a state record for it is written."""
        self.read(partition, offset)
        self._of(partition).unsettled[offset] = _Unsettled(webhook_id, now)

    def settle(self, partition: int, offset: int) -> None:
        """A state record of the command at ``offset`` is durable (no-op if
        unknown: a retry's outcome, or a partition no longer owned)."""
        entry = self._partitions.get(partition)
        if entry is not None:
            entry.unsettled.pop(offset, None)

    def busy(self, partition: int, offset: int, busy: bool = True) -> None:
        """Mark an unsettled command as being recorded (or no longer)."""
        entry = self._partitions.get(partition)
        found = entry.unsettled.get(offset) if entry is not None else None
        if found is not None:
            found.busy = busy

    def overdue(self, now: float) -> list[tuple[int, int, uuid.UUID]]:
        """Unsettled commands read more than the grace period ago and not being
        recorded: (partition, offset, webhook id) each. They are marked busy;
        the caller writes their pending records, then settles or releases them."""
        horizon = now - self._grace_s
        due: list[tuple[int, int, uuid.UUID]] = []
        for partition, entry in self._partitions.items():
            for offset, command in entry.unsettled.items():
                if command.read_at > horizon:
                    break  # read in order: every later one is younger
                if not command.busy:
                    command.busy = True
                    due.append((partition, offset, command.webhook_id))
        return due

    def unsettled_count(self) -> int:
        return sum(len(e.unsettled) for e in self._partitions.values())

    # -- committing -------------------------------------------------------------------
    def committable(self, partitions: list[int] | None = None) -> dict[int, int]:
        """partition -> offset to commit, for partitions (all if None) whose
        committable offset moved past the last commit."""
        offsets: dict[int, int] = {}
        for partition, entry in self._partitions.items():
            if partitions is not None and partition not in partitions:
                continue
            upto = next(iter(entry.unsettled), entry.read_up_to)
            if upto > entry.committed:
                offsets[partition] = upto
        return offsets

    def committed(self, offsets: dict[int, int]) -> None:
        for partition, offset in offsets.items():
            entry = self._partitions.get(partition)
            if entry is not None:
                entry.committed = max(entry.committed, offset)

    def drop_partition(self, partition: int) -> None:
        self._partitions.pop(partition, None)
