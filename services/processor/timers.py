"""The deadline index: durable timers bucketed by (partition, epoch second).

A tick reads only the buckets between the partition's cursor and the tick's
second, never a scan over all pending timers. Pure functions over two
key-value stores (the processor's faust tables; dicts in tests):

- ``buckets``: ``"<partition>:<second>"`` -> how many entries the second has had,
  and ``"<partition>:<second>:<n>"`` -> ``[dispatch, step, deadline_iso]``: one
  small record per timer, so arming one costs the same however full its
  second is (a bucket as one big value made arming quadratic)
- ``cursors``: ``"<partition>"`` -> the cursor record (see :class:`Cursor`), and
  ``"<partition>:fired"`` -> what the last few ticks fired (kept apart so that
  arming a timer reads only the small cursor record)

Both are keyed by partition because a faust table is one key space whose
writes land in the changelog partition of the event being processed: without
the partition in the key two partitions would overwrite each other's entries.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from dataclasses import asdict, dataclass
from datetime import datetime

import orjson

# How many recent ticks remember what they fired, so a tick redelivered after
# a crash can re-assert those timeouts instead of firing nothing.
REMEMBERED_TICKS = 16

Store = MutableMapping[str, bytes]


@dataclass
class Cursor:
    # Lowest second whose bucket may still hold entries (None: nothing armed yet).
    next_second: int | None = None
    # Second of the last tick processed: a deadline already behind it is due,
    # so it is filed there rather than in a bucket no tick will read again.
    last_tick_second: int | None = None
    last_tick_offset: int = -1


@dataclass(frozen=True)
class Due:
    dispatch_uuid: str
    step: int
    deadline_at: datetime


def count_key(partition: int, second: int) -> str:
    return f"{partition}:{second}"


def entry_key(partition: int, second: int, index: int) -> str:
    return f"{partition}:{second}:{index}"


def load_cursor(cursors: Store, partition: int) -> Cursor:
    raw = cursors.get(str(partition))
    return Cursor(**orjson.loads(raw)) if raw is not None else Cursor()


def _save_cursor(cursors: Store, partition: int, cursor: Cursor) -> None:
    cursors[str(partition)] = orjson.dumps(asdict(cursor))


def schedule(
    buckets: Store,
    cursors: Store,
    partition: int,
    dispatch_uuid: str,
    step: int,
    deadline: datetime,
) -> None:
    """File a deadline: O(1) small writes whatever the bucket holds.

    Filing the same timer twice (a re-assertion) files two entries; the second
    to fire finds its step no longer waiting and is dropped.
    """
    cursor = load_cursor(cursors, partition)
    second = math.floor(deadline.timestamp())
    if cursor.last_tick_second is not None and second < cursor.last_tick_second:
        second = cursor.last_tick_second
    counter = count_key(partition, second)
    raw_count = buckets.get(counter)
    index = int(raw_count) if raw_count is not None else 0
    buckets[entry_key(partition, second, index)] = orjson.dumps(
        [dispatch_uuid, step, deadline.isoformat()]
    )
    buckets[counter] = str(index + 1).encode()
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
        raw_fired = cursors.get(f"{partition}:fired")
        remembered: list[list[object]] = orjson.loads(raw_fired) if raw_fired else []
        for offset, fired in remembered:
            if offset == tick_offset and isinstance(fired, list):
                return [_due(e) for e in fired], True
        return [], True
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
    for index in range(int(raw_count)):
        key = entry_key(partition, second, index)
        raw = buckets.get(key)
        if raw is None:
            continue  # fired by an earlier tick of this same second
        entry = _due(orjson.loads(raw))
        if entry.deadline_at <= now:
            due.append(entry)
            del buckets[key]
        else:
            waiting += 1
    if not waiting:
        del buckets[counter]
    return due


def remember_fired(cursors: Store, partition: int, tick_offset: int, fired: list[Due]) -> None:
    """Record which entries a tick actually fired (not those found stale), so a
    redelivery of that tick re-asserts exactly those."""
    fired_key = f"{partition}:fired"
    raw_fired = cursors.get(fired_key)
    remembered: list[list[object]] = orjson.loads(raw_fired) if raw_fired is not None else []
    if not fired and not remembered:
        return
    entries = [[d.dispatch_uuid, d.step, d.deadline_at.isoformat()] for d in fired]
    remembered = [*remembered, [tick_offset, entries]][-REMEMBERED_TICKS:]
    if not any(f for _, f in remembered):
        remembered = []  # nothing fired lately: stop rewriting the record every tick
    cursors[fired_key] = orjson.dumps(remembered)


def _due(entry: list[object]) -> Due:
    dispatch_uuid, step, deadline_iso = entry
    return Due(str(dispatch_uuid), int(str(step)), datetime.fromisoformat(str(deadline_iso)))
