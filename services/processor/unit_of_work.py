"""Store writes that can be taken back: the processor's unit of work.

Each input (an event, or one timer entry a tick fires) either takes effect
whole (its state, its deadlines, its outputs) or not at all. A
:class:`Journal` wraps a key-value store and remembers, for every write made
since the last :meth:`Journal.commit`, what the key held before, so a failed
input can be rolled back to a savepoint. Reads go straight to the store:
only writes pay (one extra read of the previous value), which keeps the
journal off the fold's hot path.

Rolling back matters because the stores are a write-back cache flushed once
per batch: without it, a tick that failed half-way through its due entries
would still flush the buckets it had emptied and the cursor it had moved,
and the entries after the failure would never fire.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

_MISSING = object()


class Journal(MutableMapping[str, bytes]):
    __slots__ = ("_base", "_undo")

    def __init__(self, base: MutableMapping[str, bytes]) -> None:
        self._base = base
        # (key, value before the write, or _MISSING), oldest first.
        self._undo: list[tuple[str, Any]] = []

    @property
    def base(self) -> MutableMapping[str, bytes]:
        return self._base

    def get(self, key: str, default: Any = None) -> Any:
        return self._base.get(key, default)

    def __getitem__(self, key: str) -> bytes:
        return self._base[key]

    def __setitem__(self, key: str, value: bytes) -> None:
        before = self._base.get(key, _MISSING)
        self._base[key] = value
        # Only a write that took place has anything to undo.
        self._undo.append((key, before))

    def __delitem__(self, key: str) -> None:
        before = self._base.get(key, _MISSING)
        if before is _MISSING:
            raise KeyError(key)
        del self._base[key]
        self._undo.append((key, before))

    def __contains__(self, key: object) -> bool:
        return key in self._base

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)

    def __getattr__(self, name: str) -> Any:
        # Anything else a store offers (a test's recording store, say).
        return getattr(self._base, name)

    # -- the unit of work --------------------------------------------------------
    def savepoint(self) -> int:
        return len(self._undo)

    def rollback(self, savepoint: int = 0) -> None:
        """Restore every key written since ``savepoint``, newest write first."""
        undo = self._undo
        base = self._base
        while len(undo) > savepoint:
            key, before = undo.pop()
            if before is _MISSING:
                base.pop(key, None)
            else:
                base[key] = before

    def commit(self) -> None:
        """Keep every write so far: nothing before this can be rolled back."""
        self._undo.clear()
