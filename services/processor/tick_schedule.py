"""Which partitions need a tick: those with a deadline due, and no others.

A tick is how time enters the log (DESIGN §5): folding ``Tick(now)`` fires
what is due at ``now``. Ticking every partition four times a second whatever
it holds cost an idle stack a record per tick on ``dispatch.events``, a
changelog record for the partition's cursor, and every reader of the log a
record to skip: about a third of the stack's CPU at rest. Each worker now
ticks only its own partitions, and only when the earliest second still filed
in the partition's deadline index has come.

The worker keeps, per partition it folds, the seconds that have a bucket in
the index (``timers.count_key``), learnt from the index itself the first time
the partition is folded in a consumer generation (``learn``: another worker
may have filed deadlines before), and from then on from the buckets each
batch writes (``filed``). What a tick drains is forgotten through the cursor:
no bucket is left below its ``next_second`` (``passed``). So the set holds
every filed second (it may hold a drained one for a tick longer, which only
costs that tick). A partition not yet learnt is ticked every interval, as
before, which is also what makes its first batch come.

Pure: no faust, no I/O; ``services/processor/app.py`` feeds it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable


class TickSchedule:
    def __init__(self) -> None:
        # partition -> min-heap of filed seconds
        self._heaps: dict[int, list[int]] = {}
        # partition -> the seconds in its heap
        self._filed: dict[int, set[int]] = {}
        self._generation: object = None

    def generation(self, generation: object) -> None:
        """The consumer generation now: in a new one every partition may have
        been folded (and its index changed) elsewhere since it was learnt."""
        if generation != self._generation:
            self._generation = generation
            self._heaps.clear()
            self._filed.clear()

    def known(self, partition: int) -> bool:
        return partition in self._filed

    def learn(self, partition: int, seconds: Iterable[int]) -> None:
        """The seconds the partition's index holds, read from its store."""
        filed = self._filed.setdefault(partition, set())
        heap = self._heaps.setdefault(partition, [])
        for second in seconds:
            if second not in filed:
                filed.add(second)
                heapq.heappush(heap, second)

    def filed(self, partition: int, second: int) -> None:
        """A batch wrote the bucket of ``second`` (a deadline was filed)."""
        filed = self._filed.get(partition)
        if filed is not None and second not in filed:
            filed.add(second)
            heapq.heappush(self._heaps[partition], second)

    def passed(self, partition: int, next_second: int | None) -> None:
        """The partition's cursor after a tick: no bucket below ``next_second``."""
        filed = self._filed.get(partition)
        if filed is None or next_second is None:
            return
        heap = self._heaps[partition]
        while heap and heap[0] < next_second:
            filed.discard(heapq.heappop(heap))

    def due(self, partitions: Iterable[int], now_second: int) -> list[int]:
        """Of ``partitions`` (those this worker folds), the ones to tick at
        ``now_second``: not learnt yet, or holding a second that has come."""
        ticked = []
        for partition in partitions:
            heap = self._heaps.get(partition)
            if heap is None or (heap and heap[0] <= now_second):
                ticked.append(partition)
        return ticked
