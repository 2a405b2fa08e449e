"""Webhooks already delivered or abandoned, so a repeated command is dropped.

Kept per partition (dropped when the partition moves to another deliverer) and
only for the retention window of the state topic: past it, the state record is
gone from Kafka too, and a command that old being repeated is not expected.
"""

from __future__ import annotations

import uuid
from collections import defaultdict


class FinishedWebhooks:
    def __init__(self, retention_s: float) -> None:
        self._retention_s = retention_s
        # partition -> webhook id -> (round, finished at); insertion order is
        # finishing order, so the oldest entries are always first.
        self._by_partition: dict[int, dict[uuid.UUID, tuple[int, float]]] = defaultdict(dict)

    def add(self, partition: int, webhook_id: uuid.UUID, round_: int, finished_at: float) -> None:
        entries = self._by_partition[partition]
        entries.pop(webhook_id, None)
        entries[webhook_id] = (round_, finished_at)

    def round_of(self, partition: int, webhook_id: uuid.UUID) -> int | None:
        entry = self._by_partition.get(partition, {}).get(webhook_id)
        return None if entry is None else entry[0]

    def discard(self, partition: int, webhook_id: uuid.UUID) -> None:
        self._by_partition.get(partition, {}).pop(webhook_id, None)

    def drop_partition(self, partition: int) -> None:
        self._by_partition.pop(partition, None)

    def prune(self, now: float) -> int:
        """Forget entries older than the window; returns how many went."""
        horizon = now - self._retention_s
        dropped = 0
        for entries in self._by_partition.values():
            while entries:
                oldest = next(iter(entries))
                if entries[oldest][1] >= horizon:
                    break
                del entries[oldest]
                dropped += 1
        return dropped

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._by_partition.values())
