"""Per-dispatch state of the failover template.

Plain mutable dataclasses: the processor decodes a fresh copy from its table
for every event, folds into it and writes it back, so mutating in place is
safe and saves a copy per event. Times are aware datetimes; the processor's
state codec (``services/processor/state_codec.py``) stores them as ISO text.
Field order is the stored order: do not reorder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypedDict

from services.failover.workflow import FAILED_STATUSES, Workflow

__all__ = ["FAILED_STATUSES", "DispatchState", "Price", "SendFailure", "StepState"]

Outcome = Literal["completed", "error"]


class Price(TypedDict):
    price: str
    currency: str


class Unattributed(TypedDict):
    message_uuid: str
    status: str


@dataclass
class SendFailure:
    """The provider's error when the send itself failed."""

    code: int | None
    reason: str
    at: datetime
    # The MessageSendFailed that recorded it (its webhook is re-asserted for it).
    event_id: str


@dataclass
class StepState:
    index: int
    channel: str
    command_id: str
    started_at: datetime | None = None
    message_uuid: str | None = None
    submitted_at: datetime | None = None
    send_failed: SendFailure | None = None
    deadline_at: datetime | None = None
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
    workflow: Workflow
    steps: list[StepState] = field(default_factory=list)
    # The status_key of every status folded (duplicates dropped).
    seen: list[str] = field(default_factory=list)
    # Statuses whose message_uuid no step claims yet (arrived before MessageSubmitted).
    unattributed: list[Unattributed] = field(default_factory=list)
    # message_uuid -> the latest price seen for it.
    usage: dict[str, Price] = field(default_factory=dict)
    outcome: Outcome | None = None
    outcome_step: int | None = None
    outcome_reason: str | None = None
    # The final report's payload, built once when the outcome was decided.
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
        return self.workflow.is_last(step)

    def step(self, index: int) -> StepState | None:
        return self.steps[index] if 0 <= index < len(self.steps) else None

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

    def total_usage(self) -> Price:
        total = sum((Decimal(u["price"]) for u in self.usage.values()), Decimal(0))
        currency = next((u["currency"] for u in self.usage.values()), "EUR")
        return {"price": str(total), "currency": currency}
