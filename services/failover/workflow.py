"""A dispatch's workflow as the gateway validated it, and what its statuses mean."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from events.dispatch import Channel
from services.gateway.schema import Endpoint, Failover, WorkflowItem

# condition_status -> the statuses that meet it (seed: ``delivered`` is met by
# ``read`` too). The last step has no failover: ``delivered`` or ``read`` ends it.
CONDITION_STATUSES: dict[str, frozenset[str]] = {
    "delivered": frozenset({"delivered", "read"}),
    "read": frozenset({"read"}),
}
FAILED_STATUSES = frozenset({"rejected", "undeliverable"})


class InvalidWorkflow(ValueError):
    """A workflow the gateway would not have accepted."""


class Workflow:
    """The items of a dispatch, read as the gateway's models.

    It keeps the items as the client sent them (what ``SendMessage`` carries
    and the state stores, byte for byte; the gateway validated them before
    they reached the log) and validates a part the first time the rules read
    it: a stored state is decoded for every event, and most events read one
    step's ``failover`` alone, so validating every item each time (6 us for
    two) would cost the processor a tenth of its time per event. A part that
    does not validate raises :class:`InvalidWorkflow` where it is read.
    """

    __slots__ = ("_as_sent", "_endpoints", "_failovers", "_items")

    def __init__(self, as_sent: list[dict[str, Any]]) -> None:
        self._as_sent = as_sent
        # Parts read so far, by step (made when first needed: one state is
        # decoded per event, most read one part).
        self._items: dict[int, WorkflowItem] | None = None
        self._failovers: dict[int, Failover] | None = None
        self._endpoints: dict[int, Endpoint] | None = None

    @classmethod
    def requested(cls, as_sent: Sequence[Any]) -> Workflow:
        """A new dispatch's workflow: items, each an object (shared with the
        event, not copied: nothing mutates a workflow)."""
        items = list(as_sent)
        if not items or not all(isinstance(item, dict) for item in items):
            raise InvalidWorkflow("a workflow is a non-empty list of items")
        return cls(items)

    def __len__(self) -> int:
        return len(self._as_sent)

    def __getitem__(self, step: int) -> WorkflowItem:
        if self._items is None:
            self._items = {}
        item = self._items.get(step)
        if item is None:
            item = self._items[step] = _valid(WorkflowItem, self._as_sent[step], step)
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
        if self._endpoints is None:
            self._endpoints = {}
        endpoint = self._endpoints.get(step)
        if endpoint is None:
            to = self._as_sent[step].get("to")
            endpoint = self._endpoints[step] = _valid(Endpoint, to, step)
        return endpoint.type

    def is_last(self, step: int) -> bool:
        return step == len(self._as_sent) - 1

    def failover(self, step: int) -> Failover:
        """A non-last step's failover (the gateway requires one on all but the last)."""
        if self._failovers is None:
            self._failovers = {}
        failover = self._failovers.get(step)
        if failover is None:
            raw = self._as_sent[step].get("failover")
            if raw is None:
                raise InvalidWorkflow(f"step {step} is not the last and has no failover")
            failover = self._failovers[step] = _valid(Failover, raw, step)
        return failover

    def condition_statuses(self, step: int) -> frozenset[str]:
        if self.is_last(step):
            return CONDITION_STATUSES["delivered"]
        return CONDITION_STATUSES[self.failover(step).condition_status]


_M = TypeVar("_M", bound=BaseModel)


def _valid(model: type[_M], raw: Any, step: int) -> _M:
    try:
        # The model's validator itself: model_validate's wrapper costs half
        # as much again, on every event that reads a step's failover.
        valid: _M = model.__pydantic_validator__.validate_python(raw)
        return valid
    except ValidationError as exc:
        # Never the input itself in the message: it reaches logs.
        errors = exc.errors(include_input=False, include_url=False)
        raise InvalidWorkflow(f"step {step} does not validate: {errors[:3]}") from exc
