"""Partitions handed over on a rebalance with nothing done twice, nor undone.

faust-streaming commits offsets every ``broker_commit_interval`` and never on
a rebalance, and with aiokafka's eager protocol every rebalance revokes every
partition, kept ones included, then seeks them all back to their committed
offsets. Two things follow, both seen with processors joining and leaving
under load (`tests/integration/test_scale_out.py`):

1. **Work since the last commit is done again** by whoever owns the partition
   next — this worker too, for a partition it keeps: the same decisions
   re-asserted at new offsets (harmless by their ids, but a clean rebalance
   should not repeat anything). So the revocation first waits for the batch
   in progress to end and commits what is acknowledged.

2. **A stale commit undoes another worker's progress.** faust drops its
   acknowledgement bookkeeping of revoked partitions, but a batch still in
   the agent's hands acknowledges its offsets afterwards, which fills that
   bookkeeping again. When such a partition comes back to this worker later,
   its next commit writes those old offsets over the newer ones its other
   owner committed in between, and everything since is read and re-decided
   again (seen: 25 s of a partition's events). So an assignment starts from
   empty bookkeeping: faust seeks every assigned partition to its committed
   offset at that point anyway, and acknowledges what it reads from there.

faust internals touched (pinned by ``tests/unit/processor/test_runtime_contract.py``):
``Consumer.on_partitions_revoked``, ``Consumer.on_partitions_assigned``,
``Consumer._gap``, ``Consumer._acked``, ``Consumer._acked_index``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from faust.transport import consumer as faust_consumer

log = logging.getLogger("dispatch.processor")

_on_partitions_revoked = faust_consumer.Consumer.on_partitions_revoked
_on_partitions_assigned = faust_consumer.Consumer.on_partitions_assigned


def hand_over_cleanly(batch_in_progress: asyncio.Lock, timeout_s: float) -> None:
    """Patch faust's consumer: commit on revocation once the batch in progress
    (the fold holds ``batch_in_progress`` around each) has ended, and start
    every assignment from empty acknowledgement bookkeeping."""

    async def on_partitions_revoked(self: Any, revoked: set[Any]) -> None:
        try:
            # Bounded: a revocation that waits past the session timeout gets
            # this worker thrown out of the group.
            async with asyncio.timeout(timeout_s), batch_in_progress:
                await self.commit()
        except TimeoutError:
            log.warning("rebalance: no commit, the batch in progress outlasted %.1f s", timeout_s)
        await _on_partitions_revoked(self, revoked)

    async def on_partitions_assigned(self: Any, assigned: set[Any], generation_id: int = 0) -> None:
        for bookkeeping in (self._gap, self._acked, self._acked_index):
            bookkeeping.clear()
        await _on_partitions_assigned(self, assigned, generation_id)

    faust_consumer.Consumer.on_partitions_revoked = on_partitions_revoked  # type: ignore[method-assign]
    faust_consumer.Consumer.on_partitions_assigned = on_partitions_assigned  # type: ignore[method-assign]
