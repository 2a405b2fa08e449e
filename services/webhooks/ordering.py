"""Keeps a dispatch's final report behind its status webhooks.

A final report may not go out before every status webhook that preceded it on
``dispatch.webhooks`` (same dispatch, so same partition, lower offset) was
attempted at least once. Statuses that come after the final report (a late
delivery receipt) do not hold it back. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from services.webhooks.state import DeliveryState


class OrderGate:
    def __init__(self) -> None:
        # dispatch -> status webhook id -> offset, for statuses never attempted yet
        self._unattempted: dict[uuid.UUID, dict[uuid.UUID, int]] = defaultdict(dict)
        # Every record of a dispatch is on one partition (keyed by dispatch_uuid).
        self._partition_of: dict[uuid.UUID, int] = {}
        self._held: dict[uuid.UUID, list[DeliveryState]] = defaultdict(list)

    def track(self, state: DeliveryState) -> None:
        """Note a pending status that has not been attempted in this round."""
        if state.command.kind == "status" and state.attempts == 0 and state.phase == "pending":
            dispatch = state.command.dispatch_uuid
            self._unattempted[dispatch][state.webhook_id] = state.source_offset
            self._partition_of[dispatch] = state.source_partition

    def admit(self, state: DeliveryState) -> bool:
        """True if ``state`` may be attempted now; otherwise it is held until released."""
        if state.command.kind != "final" or not self._blocks(state):
            return True
        self._held[state.command.dispatch_uuid].append(state)
        return False

    def attempted(self, state: DeliveryState) -> list[DeliveryState]:
        """A status was attempted: return the finals of its dispatch now free to go."""
        dispatch = state.command.dispatch_uuid
        pending = self._unattempted.get(dispatch)
        if pending is None or pending.pop(state.webhook_id, None) is None:
            return []
        if not pending:
            del self._unattempted[dispatch]
            self._partition_of.pop(dispatch, None)
        held = self._held.pop(dispatch, [])
        released = [final for final in held if not self._blocks(final)]
        still_held = [final for final in held if self._blocks(final)]
        if still_held:
            self._held[dispatch] = still_held
        return released

    def forget_partition(self, partition: int) -> None:
        """Drop everything of a partition this process no longer owns."""
        for dispatch, owner in list(self._partition_of.items()):
            if owner == partition:
                del self._partition_of[dispatch]
                self._unattempted.pop(dispatch, None)
        for dispatch, held in list(self._held.items()):
            kept = [s for s in held if s.source_partition != partition]
            if kept:
                self._held[dispatch] = kept
            else:
                del self._held[dispatch]

    def _blocks(self, final: DeliveryState) -> bool:
        pending = self._unattempted.get(final.command.dispatch_uuid, {})
        return any(offset < final.source_offset for offset in pending.values())
