"""A write-back cache over a table, for one batch of events.

The agent folds a batch of events (whatever is already waiting in its stream,
up to a limit) through these instead of through the faust tables: reads see
the batch's own writes first, and the writes reach the table once per key and
batch instead of once per event. A dispatch folded three times in a batch, the
same deadline counter bumped by a hundred timers, the partition's cursor: one
table write (one RocksDB put, one changelog record) each.

Reads and writes are per partition (the caller sets ``partition`` before
each event), because a table keeps a RocksDB and a changelog partition per
partition of its input: a miss is read from that partition's store, and a
write is handed over with the partition of the event that made it. The
events of a batch are acknowledged only after the writes, so an offset is
never committed ahead of its table writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from itertools import islice

# ``read(key, partition)``: a key's value in the table, or None.
Reader = Callable[[str, int], bytes | None]

# Values kept after they are written, for the batches after: a deadline
# bucket or cursor is read again by the next batch, a dispatch by its next
# event. Few, because they are held as Python bytes: 20,000 per table cost
# 220 MiB of RSS with 300,000 timers pending (the buckets' chunks are a few
# KiB each), 4,096 keep the hot keys.
WRITTEN_KEPT = 4_096


class WriteBack(MutableMapping[str, bytes]):
    def __init__(self, read: Reader, kept: int = WRITTEN_KEPT) -> None:
        # Where a miss is read from: ``read(key, partition)``, the table's
        # store of that partition (``changelog.table_reader``).
        self._read = read
        # Partition of the event being folded: set by the caller before each event.
        self.partition = 0
        # key -> (value, or None for a deletion; partition of the event that wrote it)
        self._pending: dict[str, tuple[bytes | None, int]] = {}
        # key -> value last written (None: deleted), oldest first. Only
        # this process writes the store while it owns the partition; the
        # caller calls ``forget`` when ownership may have changed (a rebalance).
        self._written: dict[str, bytes | None] = {}
        self._kept = kept

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        hit = self._pending.get(key)
        if hit is not None:
            return hit[0] if hit[0] is not None else default
        if key in self._written:
            written = self._written[key]
            return written if written is not None else default
        value = self._read(key, self.partition)
        return value if value is not None else default

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
        # Nothing walks a table's keys (the deadline index is keyed so that a
        # tick reads only what is due); listing the store's would mean a scan.
        raise TypeError("a write-back cache does not list its store's keys")

    def __len__(self) -> int:
        raise TypeError("a write-back cache does not count its store's keys")

    def partitions(self) -> set[int]:
        """Partitions with writes not yet flushed."""
        return {partition for _, partition in self._pending.values()}

    def take(self, partition: int) -> list[tuple[str, bytes | None]]:
        """Remove and return what events of ``partition`` changed (None: deleted),
        for the caller to write through (see ``changelog.TableWriter``)."""
        taken = [
            (key, value)
            for key, (value, written_on) in self._pending.items()
            if written_on == partition
        ]
        written = self._written
        for key, value in taken:
            del self._pending[key]
            written.pop(key, None)  # re-inserted as the newest
            written[key] = value
        if len(written) > self._kept:
            for key in list(islice(written, len(written) - self._kept)):
                del written[key]
        return taken

    def forget(self) -> None:
        """Drop the values kept from earlier batches: the store may have been
        written by another owner of the partition, or restored, since."""
        self._written.clear()
