"""A write-back cache over a table, for one batch of events.

The agent folds a batch of events (whatever is already waiting in its stream,
up to a limit) through these instead of through the faust tables: reads see
the batch's own writes first, and the writes reach the table once per key and
batch instead of once per event. A dispatch folded three times in a batch, the
same deadline counter bumped by a hundred timers, the partition's cursor: one
table write (one RocksDB put, one changelog record) each.

Every write remembers the partition of the event that made it, because a
faust table writes into the store and changelog partition of the *current*
event: the agent flushes one partition at a time with an event of that
partition as the current one. The events of a batch are acknowledged only
after the flush, so an offset is never committed ahead of its table writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping


class WriteBack(MutableMapping[str, bytes]):
    def __init__(
        self, store: MutableMapping[str, bytes], read: Mapping[str, bytes] | None = None
    ) -> None:
        self.store = store
        # Where a miss is read from, if not ``store`` itself (see the app).
        self._read = read if read is not None else store
        # Partition of the event being folded: set by the caller before each event.
        self.partition = 0
        # key -> (value, or None for a deletion; partition of the event that wrote it)
        self._pending: dict[str, tuple[bytes | None, int]] = {}

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        hit = self._pending.get(key)
        if hit is not None:
            return hit[0] if hit[0] is not None else default
        return self._read.get(key, default)

    def __getitem__(self, key: str) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: bytes) -> None:
        self._pending[key] = (value, self.partition)

    def __delitem__(self, key: str) -> None:
        if self.get(key) is None:
            raise KeyError(key)
        self._pending[key] = (None, self.partition)

    def __iter__(self) -> Iterator[str]:
        for key, (value, _) in self._pending.items():
            if value is not None:
                yield key
        for key in self.store:
            if key not in self._pending:
                yield key

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def partitions(self) -> set[int]:
        """Partitions with writes not yet flushed."""
        return {partition for _, partition in self._pending.values()}

    def flush(self, partition: int) -> None:
        """Write what events of ``partition`` changed through to the store."""
        done = []
        for key, (value, written_on) in self._pending.items():
            if written_on != partition:
                continue
            done.append(key)
            if value is not None:
                self.store[key] = value
            elif key in self.store:
                del self.store[key]
        for key in done:
            del self._pending[key]

    def discard(self) -> None:
        self._pending.clear()
