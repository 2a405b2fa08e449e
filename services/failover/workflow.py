"""A dispatch's workflow as the gateway validated it, and what its statuses mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter, ValidationError

from events.dispatch import Channel
from services.gateway.schema import Failover, WorkflowItem

# condition_status -> the statuses that meet it (seed: ``delivered`` is met by
# ``read`` too). The last step has no failover: ``delivered`` or ``read`` ends it.
CONDITION_STATUSES: dict[str, frozenset[str]] = {
    "delivered": frozenset({"delivered", "read"}),
    "read": frozenset({"read"}),
}
FAILED_STATUSES = frozenset({"rejected", "undeliverable"})

_ITEMS = TypeAdapter(list[WorkflowItem])


class InvalidWorkflow(ValueError):
    """A workflow the gateway would not have accepted."""


class Workflow:
    """The items of a dispatch, each a :class:`WorkflowItem` when read.

    It keeps the items as the client sent them (what ``SendMessage`` carries
    and the state stores, byte for byte) and validates an item the first time
    the rules read it: a stored state is decoded for every event, and most
    events read one item's ``failover`` only, so validating every item each
    time would cost the processor about a tenth of its time per event.
    """

    __slots__ = ("_as_sent", "_failovers", "_items")

    def __init__(self, as_sent: list[dict[str, Any]]) -> None:
        self._as_sent = as_sent
        self._items: list[WorkflowItem | None] = [None] * len(as_sent)
        self._failovers: dict[int, Failover] = {}

    @classmethod
    def validated(cls, as_sent: Sequence[dict[str, Any]]) -> Workflow:
        """Every item checked at once (a new dispatch), or :class:`InvalidWorkflow`."""
        # Shared with the event, not copied: nothing mutates a workflow.
        shared = list(as_sent)
        try:
            items = _ITEMS.validate_python(shared)
        except ValidationError as exc:
            # Never the input itself in the message: it reaches logs.
            errors = exc.errors(include_input=False, include_url=False)
            raise InvalidWorkflow(f"workflow does not validate: {errors[:3]}") from exc
        if not items:
            raise InvalidWorkflow("workflow has no items")
        workflow = cls(shared)
        workflow._items = list(items)
        return workflow

    def __len__(self) -> int:
        return len(self._as_sent)

    def __getitem__(self, step: int) -> WorkflowItem:
        item = self._items[step]
        if item is None:
            item = self._items[step] = WorkflowItem.model_validate(self._as_sent[step])
        return item

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workflow) and other._as_sent == self._as_sent

    def __repr__(self) -> str:
        return f"Workflow({self._as_sent!r})"

    @property
    def as_sent(self) -> list[dict[str, Any]]:
        return self._as_sent

    def message(self, step: int) -> dict[str, Any]:
        """Step ``step``'s Messages API message: the item as sent, without ``failover``."""
        return {k: v for k, v in self._as_sent[step].items() if k != "failover"}

    def channel(self, step: int) -> Channel:
        return self[step].to.type

    def is_last(self, step: int) -> bool:
        return step == len(self._as_sent) - 1

    def failover(self, step: int) -> Failover:
        """A non-last step's failover (the gateway requires one on all but the last)."""
        failover = self._failovers.get(step)
        if failover is not None:
            return failover
        item = self._items[step]
        if item is not None:
            failover = item.failover
        elif (raw := self._as_sent[step].get("failover")) is not None:
            # Only the part the rules read: a tenth of the item's validation.
            failover = Failover.model_validate(raw)
        if failover is None:
            raise InvalidWorkflow(f"step {step} is not the last and has no failover")
        self._failovers[step] = failover
        return failover

    def condition_statuses(self, step: int) -> frozenset[str]:
        if self.is_last(step):
            return CONDITION_STATUSES["delivered"]
        return CONDITION_STATUSES[self.failover(step).condition_status]
