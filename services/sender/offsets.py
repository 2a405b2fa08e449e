"""Which offset of a partition is safe to commit while sends run out of order.

Records of one partition finish in any order (different dispatches run in
parallel), but the committed offset must never pass a record that is still in
flight: after a crash everything from the committed offset on is redelivered.
"""

from __future__ import annotations


class OffsetTracker:
    def __init__(self) -> None:
        self._in_flight: set[int] = set()
        # Given up unfinished (their partition went to another sender): never
        # committed past, and not waited for.
        self._held: set[int] = set()
        self._highest_seen: int | None = None
        self._committed: int | None = None

    def started(self, offset: int) -> None:
        self._in_flight.add(offset)
        self._held.discard(offset)  # held before, and now delivered again
        if self._highest_seen is None or offset > self._highest_seen:
            self._highest_seen = offset

    def finished(self, offset: int) -> None:
        self._in_flight.discard(offset)

    def held(self, offset: int) -> None:
        """Stop waiting for ``offset`` without ever committing past it: it is
        left, unfinished, to the partition's next owner."""
        self._in_flight.discard(offset)
        self._held.add(offset)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def committable(self) -> int | None:
        """The next offset to commit (Kafka's "next to read"), or ``None`` if
        nothing new is safe to commit."""
        if self._highest_seen is None:
            return None
        open_offsets = self._in_flight | self._held
        candidate = min(open_offsets) if open_offsets else self._highest_seen + 1
        if self._committed is not None and candidate <= self._committed:
            return None
        return candidate

    def first_unsettled(self) -> int:
        """The first offset not settled yet (Kafka's "next to read"): never
        behind what was committed, never past a record in flight or held.
        Only asked while a record of the partition is in flight."""
        open_offsets = self._in_flight | self._held
        if open_offsets:
            return min(open_offsets)
        assert self._highest_seen is not None, "no record of this partition yet"
        return self._highest_seen + 1

    def mark_committed(self, offset: int) -> None:
        self._committed = offset
