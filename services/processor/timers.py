"""The deadline index's storage: durable timers bucketed by (partition, epoch second).

What is armed, where it is filed and when it is due are the rules'
(``services/failover/deadlines.py``); this module keeps the entries in the
processor's tables.

A tick reads only the buckets between the partition's cursor and the tick's
second, never a scan over all pending timers. Pure functions over two
key-value stores (the processor's faust tables; dicts in tests):

- ``buckets``: ``"<partition>:<second>"`` -> how many entries the second has had,
  and ``"<partition>:<second>:<chunk>"`` -> up to ``CHUNK`` entries
  ``[dispatch, step, deadline_iso]``. Chunks keep arming cheap however full a
  second is (one bucket as one value made arming quadratic), while a thousand
  timers of one second are a few dozen records to write and to delete, not a
  thousand (each record is also a changelog message).
- ``cursors``: ``"<partition>"`` -> the cursor record (see :class:`Cursor`), and
  ``"<partition>:fired:<tick offset>:<chunk>"`` -> what a recent tick fired,
  in chunks of ``FIRED_CHUNK`` so a burst never makes one oversized record.

Both are keyed by partition because a faust table is one key space whose
writes land in the changelog partition of the event being processed: without
the partition in the key two partitions would overwrite each other's entries.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass, field
from datetime import datetime

import orjson

from services.failover.deadlines import Due, filing_second, is_due

# How many recent ticks remember what they fired, so a tick redelivered after
# a crash can re-assert those timeouts instead of firing nothing.
REMEMBERED_TICKS = 16
# Entries per bucket record and per record of what a tick fired.
CHUNK = 64
FIRED_CHUNK = 500

Store = MutableMapping[str, bytes]


@dataclass
class Cursor:
    # Lowest second whose bucket may still hold entries (None: nothing armed yet).
    next_second: int | None = None
    # Second of the last tick processed: a deadline already behind it is due,
    # so it is filed there rather than in a bucket no tick will read again.
    last_tick_second: int | None = None
    last_tick_offset: int = -1
    # [tick offset, records] of the last ticks that fired something.
    fired_ticks: list[list[int]] = field(default_factory=list)


def count_key(partition: int, second: int) -> str:
    return f"{partition}:{second}"


def filed_second(key: str) -> int | None:
    """The second of a ``count_key`` (None for any other key of ``buckets``)."""
    parts = key.split(":")
    return int(parts[1]) if len(parts) == 2 else None


def chunk_key(partition: int, second: int, chunk: int) -> str:
    return f"{partition}:{second}:{chunk}"


def fired_key(partition: int, tick_offset: int, chunk: int) -> str:
    return f"{partition}:fired:{tick_offset}:{chunk}"


# The cursor last loaded or saved per partition, with the bytes it was read
# from or written as: every timer armed reads its partition's cursor, and
# parsing it (with the ticks it remembers) each time was a tenth of arming.
# Valid while the store still holds that very bytes object (bytes are
# immutable; any other write replaces the object). Callers change a loaded
# cursor only to save it.
_LAST_CURSOR: dict[int, tuple[bytes, Cursor]] = {}


def load_cursor(cursors: Store, partition: int) -> Cursor:
    raw = cursors.get(str(partition))
    if raw is None:
        return Cursor()
    last = _LAST_CURSOR.get(partition)
    if last is not None and last[0] is raw:
        return last[1]
    cursor = Cursor(**orjson.loads(raw))
    _LAST_CURSOR[partition] = (raw, cursor)
    return cursor


def _save_cursor(cursors: Store, partition: int, cursor: Cursor) -> None:
    raw = orjson.dumps(asdict(cursor))
    cursors[str(partition)] = raw
    _LAST_CURSOR[partition] = (raw, cursor)


def schedule(
    buckets: Store,
    cursors: Store,
    partition: int,
    dispatch_uuid: str,
    step: int,
    deadline: datetime,
) -> None:
    """File a deadline: a few small writes whatever the bucket holds
    (orjson writes the deadline as ``isoformat()`` text).

    Filing the same timer twice (a re-assertion) files two entries; the second
    to fire finds its step no longer waiting and is dropped.
    """
    cursor = load_cursor(cursors, partition)
    second = filing_second(deadline, cursor.last_tick_second)
    counter = count_key(partition, second)
    raw_count = buckets.get(counter)
    filed = int(raw_count) if raw_count is not None else 0
    key = chunk_key(partition, second, filed // CHUNK)
    raw_chunk = buckets.get(key)
    entry = orjson.dumps([dispatch_uuid, step, deadline])
    # A chunk is a JSON array: the entry is appended to its bytes, not parsed
    # and re-encoded with the up to CHUNK entries already there.
    if raw_chunk is None or raw_chunk == b"[]":
        buckets[key] = b"[" + entry + b"]"
    else:
        buckets[key] = b"".join((raw_chunk[:-1], b",", entry, b"]"))  # one copy of the chunk
    buckets[counter] = str(filed + 1).encode()
    if cursor.next_second is None or second < cursor.next_second:
        cursor.next_second = second
        _save_cursor(cursors, partition, cursor)


def drain(
    buckets: Store, cursors: Store, partition: int, now: datetime, tick_offset: int
) -> tuple[list[Due], bool]:
    """Entries due at ``now`` (deadline <= now, never early), removed from the
    index. Returns (due, redelivered): for a tick at or below the last tick
    offset seen, nothing changes and what that tick fired comes back."""
    cursor = load_cursor(cursors, partition)
    if tick_offset <= cursor.last_tick_offset:
        return _remembered(cursors, partition, cursor, tick_offset), True
    now_second = math.floor(now.timestamp())
    due: list[Due] = []
    if cursor.next_second is not None and cursor.next_second <= now_second:
        for second in range(cursor.next_second, now_second + 1):
            due.extend(_drain_bucket(buckets, partition, second, now))
        cursor.next_second = now_second
    cursor.last_tick_second = max(now_second, cursor.last_tick_second or now_second)
    cursor.last_tick_offset = tick_offset
    _save_cursor(cursors, partition, cursor)
    return due, False


def _drain_bucket(buckets: Store, partition: int, second: int, now: datetime) -> list[Due]:
    counter = count_key(partition, second)
    raw_count = buckets.get(counter)
    if raw_count is None:
        return []
    due: list[Due] = []
    waiting = 0
    for chunk in range(math.ceil(int(raw_count) / CHUNK)):
        key = chunk_key(partition, second, chunk)
        raw = buckets.get(key)
        if raw is None:
            continue  # fired by an earlier tick of this same second
        entries: list[list[object]] = orjson.loads(raw)
        kept = []
        for entry in entries:
            parsed = _due(entry)
            if is_due(parsed, now):
                due.append(parsed)
            else:
                kept.append(entry)
        if not kept:
            del buckets[key]
        elif len(kept) < len(entries):
            buckets[key] = orjson.dumps(kept)
        waiting += len(kept)
    if not waiting:
        del buckets[counter]
    return due


def remember_fired(cursors: Store, partition: int, tick_offset: int, fired: list[Due]) -> None:
    """Record which entries a tick actually fired (not those found stale), so a
    redelivery of that tick re-asserts exactly those."""
    if not fired:
        return
    cursor = load_cursor(cursors, partition)
    entries = [[d.dispatch_uuid, d.step, d.deadline_at.isoformat()] for d in fired]
    chunks = range(0, len(entries), FIRED_CHUNK)
    for n, start in enumerate(chunks):
        cursors[fired_key(partition, tick_offset, n)] = orjson.dumps(
            entries[start : start + FIRED_CHUNK]
        )
    cursor.fired_ticks.append([tick_offset, len(chunks)])
    while len(cursor.fired_ticks) > REMEMBERED_TICKS:
        forgotten, records = cursor.fired_ticks.pop(0)
        for n in range(records):
            cursors.pop(fired_key(partition, forgotten, n), None)
    _save_cursor(cursors, partition, cursor)


def _remembered(cursors: Store, partition: int, cursor: Cursor, tick_offset: int) -> list[Due]:
    for offset, records in cursor.fired_ticks:
        if offset == tick_offset:
            due: list[Due] = []
            for n in range(records):
                raw = cursors.get(fired_key(partition, tick_offset, n))
                due.extend(_due(entry) for entry in orjson.loads(raw or b"[]"))
            return due
    return []


def forget_cached_cursors() -> None:
    """Drop the parsed cursors: after a rollback one may have been changed in
    place without being saved."""
    _LAST_CURSOR.clear()


def entry_json(due: Due) -> bytes:
    """An entry as the index files it, for a dead letter."""
    return orjson.dumps([due.dispatch_uuid, due.step, due.deadline_at.isoformat()])


def _due(entry: list[object]) -> Due:
    dispatch_uuid, step, deadline_iso = entry
    return Due(str(dispatch_uuid), int(str(step)), datetime.fromisoformat(str(deadline_iso)))
