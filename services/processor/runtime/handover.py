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

3. **Records read right after the last seek were dropped.** A recovery ends
   by seeking every assigned partition to its committed offset, then resumes
   the flow, which empties every stream buffer (to drop what was read before
   the seek). Records fetched in between, after the seek, were dropped with
   the rest while faust counted them as read: never folded, and the commits
   went past them (seen in the scale-out test: a status that arrived while
   its partition moved to a joining worker was never folded, and its dispatch
   never ended). So the buffers are emptied just before that seek instead,
   and the resume after it keeps what they hold.

faust internals touched (pinned by ``tests/unit/processor/test_runtime_contract.py``):
``Consumer.on_partitions_revoked``, ``Consumer.on_partitions_assigned``,
``Consumer._gap``, ``Consumer._acked``, ``Consumer._acked_index``,
``Consumer._commit_offsets`` (and the ``app.producer.flush`` it starts with),
``Consumer.perform_seek``, ``Recovery.on_recovery_completed`` and
``Recovery._resume_streams`` (each seeks, then resumes the flow),
``FlowControlEvent.resume`` (which empties the buffers through ``clear``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from faust.tables.recovery import Recovery
from faust.transport import consumer as faust_consumer
from mode.utils.queues import FlowControlEvent

from services.processor.runtime.context import exit_now

log = logging.getLogger("dispatch.processor")

_commit_offsets = faust_consumer.Consumer._commit_offsets
_on_partitions_revoked = faust_consumer.Consumer.on_partitions_revoked
_on_partitions_assigned = faust_consumer.Consumer.on_partitions_assigned
_perform_seek = faust_consumer.Consumer.perform_seek
_on_recovery_completed = Recovery.on_recovery_completed
_resume_streams = Recovery._resume_streams
_resume = FlowControlEvent.resume


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


def never_commit_past_a_lost_output(outputs_lost: Callable[[], BaseException | None]) -> None:
    """Patch faust's consumer: after the producer's flush that precedes every
    commit, leave (status 70) instead of committing when an output handed to
    the producer was not delivered.

    The fold's outputs go through faust's producer as record batches whose
    failure exits the process from a callback; but that callback runs a loop
    turn after the flush returns, and the commit's request can be on its way
    by then (seen once on a rebalance: a commit after a flush that timed out
    lost the outputs of the offsets it covered). ``outputs_lost`` reads the
    batches' own futures (``Outbox.lost``)."""

    async def commit_offsets(self: Any, offsets: Any, start_new_transaction: bool = True) -> bool:
        await self.app.producer.flush()
        lost = outputs_lost()
        if lost is not None:
            exit_now(70, "an output was not delivered; leaving without committing: %r", lost)
        return bool(await _commit_offsets(self, offsets, start_new_transaction))

    faust_consumer.Consumer._commit_offsets = commit_offsets  # type: ignore[method-assign]


def keep_what_is_read_after_the_last_seek() -> None:
    """Patch faust's recovery ending (item 3 above): the stream buffers are
    emptied just before its seek to the committed offsets, not by the resume
    that follows it. A record read in between the two is then folded, and
    read again after the seek only if it was fetched before it (the fold
    skips an offset it already folded in this generation)."""
    state = {"ending": False, "keep": False}

    async def perform_seek(self: Any) -> None:
        if not state["ending"]:
            await _perform_seek(self)
            return
        self.app.flow_control.clear()  # what was read before the seek is read again after it
        await _perform_seek(self)
        state["keep"] = True

    def resume(self: Any) -> None:
        if not state["keep"]:
            _resume(self)
            return
        state["keep"] = False
        # ``resume`` empties the buffers through ``clear``: not this time.
        self.clear = lambda: None
        try:
            _resume(self)
        finally:
            del self.clear

    def ending(original: Callable[..., Coroutine[Any, Any, None]]) -> Any:
        """A recovery ending (it seeks, then resumes the flow), marked as one."""

        async def end(self: Any, generation_id: int = 0) -> None:
            state["ending"] = True
            try:
                await original(self, generation_id)
            finally:
                state["ending"] = state["keep"] = False

        return end

    faust_consumer.Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    FlowControlEvent.resume = resume  # type: ignore[method-assign]
    Recovery.on_recovery_completed = ending(_on_recovery_completed)  # type: ignore[method-assign]
    Recovery._resume_streams = ending(_resume_streams)  # type: ignore[method-assign]
