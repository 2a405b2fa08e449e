"""Which offset of a partition is safe to commit while sends run out of order.

Records of one partition finish in any order (different dispatches run in
parallel), but the committed offset must never pass a record that is still in
flight: after a crash everything from the committed offset on is redelivered.
"""

from __future__ import annotations


class OffsetTracker:
    def __init__(self) -> None:
        self._in_flight: set[int] = set()
        self._highest_seen: int | None = None
        self._committed: int | None = None

    def started(self, offset: int) -> None:
        self._in_flight.add(offset)
        if self._highest_seen is None or offset > self._highest_seen:
            self._highest_seen = offset

    def finished(self, offset: int) -> None:
        self._in_flight.discard(offset)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def committable(self) -> int | None:
        """The next offset to commit (Kafka's "next to read"), or ``None`` if
        nothing new is safe to commit."""
        if self._highest_seen is None:
            return None
        candidate = min(self._in_flight) if self._in_flight else self._highest_seen + 1
        if self._committed is not None and candidate <= self._committed:
            return None
        return candidate

    def mark_committed(self, offset: int) -> None:
        self._committed = offset
