"""Recognise the echo of a decision this worker has just taken, without decoding it.

Every decision the processor appends to ``dispatch.events`` was folded into
its dispatch's state when it was taken, so reading it back is a no-op (see
``test_echoes``): folding it again only costs a decode, a state read and
decode, the fold and a re-encode to find nothing changed. Under load that is
most of the work (a timeout is one input and three echoes).

The worker remembers a digest of the exact bytes of each decision it appends
until their echo comes back, and skips the echo. The memory is dropped whenever
it may not hold (the batch that took the decisions was abandoned, or a
rebalance may re-seek the partitions): echoes then take the ordinary path,
which is a no-op too, or a re-assertion after a redelivery.

Only decisions whose fold is idempotent whatever happened since are
remembered. ``UsageAmended`` is not: an older amendment folded after a newer
one would set the reported price back.
"""

from __future__ import annotations

import hashlib

SKIPPABLE = frozenset(
    {"StepStarted", "TimerScheduled", "StepTimedOut", "WorkflowCompleted", "WorkflowFailed"}
)


def _digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=16).digest()


class OwnDecisions:
    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._pending: dict[bytes, str] = {}

    def appended(self, value: bytes, kind: str) -> None:
        """A decision of type ``kind`` (already folded) was appended as ``value``."""
        if kind not in SKIPPABLE:
            return
        if len(self._pending) >= self.limit:
            # Oldest first: its echo is the most likely to have been missed.
            del self._pending[next(iter(self._pending))]
        self._pending[_digest(value)] = kind

    def echo(self, value: bytes) -> str | None:
        """The type of the decision ``value`` echoes, if it is one of ours."""
        if not self._pending:
            return None
        return self._pending.pop(_digest(value), None)

    def forget(self) -> None:
        self._pending.clear()

    def __len__(self) -> int:
        return len(self._pending)
