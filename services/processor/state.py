"""Per-dispatch state of the failover template, and its (orjson) codec.

Plain mutable dataclasses: the processor decodes a fresh copy from its table
for every event, folds into it and writes it back, so mutating in place is
safe and saves a copy per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, TypeVar

import orjson

_D = TypeVar("_D")

CONDITION_STATUSES: dict[str, frozenset[str]] = {
    "delivered": frozenset({"delivered", "read"}),
    "read": frozenset({"read"}),
}
FAILED_STATUSES = frozenset({"rejected", "undeliverable"})


@dataclass
class StepState:
    index: int
    channel: str
    command_id: str
    started_at: str | None = None
    message_uuid: str | None = None
    submitted_at: str | None = None
    # The provider's error when the send itself failed ({code, reason, at}).
    send_failed: dict[str, Any] | None = None
    deadline_at: str | None = None
    # The deadline counts from the submission (expiry or last-step limit); until
    # then a guard counted from the start keeps a silent sender from stalling it.
    armed_on_submission: bool = False
    timed_out: bool = False
    # The send's outcome is unknown (see MessageOutcomeUnknown): the step waits
    # as if submitted, with no message_uuid until a status names it.
    outcome_unknown: bool = False
    # Status names in log order; the first decisive one decides the step.
    statuses: list[str] = field(default_factory=list)


@dataclass
class DispatchState:
    dispatch_uuid: str
    application_id: str
    workflow: list[dict[str, Any]]
    steps: list[StepState] = field(default_factory=list)
    # "message_uuid|status|timestamp" of every status folded (duplicates dropped).
    seen: list[str] = field(default_factory=list)
    # Statuses whose message_uuid no step claims yet (arrived before MessageSubmitted).
    unattributed: list[dict[str, str]] = field(default_factory=list)
    # message_uuid -> {"price", "currency"}: the latest price seen per message.
    usage: dict[str, dict[str, str]] = field(default_factory=dict)
    outcome: str | None = None
    outcome_step: int | None = None
    outcome_reason: str | None = None
    final_report: dict[str, Any] | None = None
    # Prices the final report (or a later UsageAmended) already accounted for.
    reported_usage: dict[str, str] = field(default_factory=dict)
    # Highest offset of dispatch.events already folded into this state.
    last_offset: int = -1

    @property
    def finished(self) -> bool:
        return self.outcome is not None

    @property
    def current(self) -> StepState | None:
        return self.steps[-1] if self.steps else None

    def is_last(self, step: int) -> bool:
        return step == len(self.workflow) - 1

    def waiting(self, step: int) -> bool:
        """Step ``step`` is the one in flight and nothing has decided it yet."""
        current = self.current
        return (
            not self.finished
            and current is not None
            and current.index == step
            and not current.timed_out
        )

    def step_for_message(self, message_uuid: str) -> StepState | None:
        for step in self.steps:
            if step.message_uuid == message_uuid:
                return step
        return None

    def condition_statuses(self, step: int) -> frozenset[str]:
        if self.is_last(step):
            return CONDITION_STATUSES["delivered"]
        failover = self.workflow[step].get("failover") or {}
        return CONDITION_STATUSES.get(
            str(failover.get("condition_status", "delivered")), CONDITION_STATUSES["delivered"]
        )

    def total_usage(self) -> dict[str, str]:
        total = sum((Decimal(u["price"]) for u in self.usage.values()), Decimal(0))
        currency = next((u["currency"] for u in self.usage.values()), "EUR")
        return {"price": str(total), "currency": currency}


def channel_of(item: dict[str, Any]) -> str:
    to = item.get("to")
    if isinstance(to, dict) and isinstance(to.get("type"), str):
        return str(to["type"])
    return str(item.get("channel", "sms"))


def encode_state(state: DispatchState) -> bytes:
    # orjson serialises dataclasses natively (and far faster than asdict()).
    return orjson.dumps(state)


_STATE_FIELDS = len(fields(DispatchState))
_STEP_FIELDS = len(fields(StepState))


def decode_state(data: bytes) -> DispatchState:
    raw = orjson.loads(data)
    raw["steps"] = [_made(StepState, _STEP_FIELDS, s) for s in raw["steps"]]
    return _made(DispatchState, _STATE_FIELDS, raw)


def _made(cls: type[_D], field_count: int, values: dict[str, Any]) -> _D:
    """``cls(**values)``. A state written by this version has every field
    (``encode_state`` writes them all), so the parsed dict becomes the object's
    attributes as it is: a third of a decode went to the dataclass ``__init__``.
    One written before a field existed goes through ``__init__`` for its default."""
    if len(values) != field_count:
        return cls(**values)
    made = object.__new__(cls)
    made.__dict__ = values
    return made
