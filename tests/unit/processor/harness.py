"""A processor without a broker: the engine over dicts, with a fake clock.

Time only enters through event timestamps and ``Tick.now``, so skipping time
is feeding a tick with a later ``now``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from events.codec import LogEvent
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import (
    ErrorDetail,
    MessageSendFailed,
    MessageStatusReceived,
    MessageSubmitted,
    Tick,
    Usage,
    WorkflowRequested,
)
from services.failover.decide import Output, Policy
from services.failover.factories import command_id
from services.failover.state import DispatchState
from services.processor.engine import Stores, load, process

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def item(
    channel: str = "sms", expiry: int | None = 60, condition: str = "delivered"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "to": {"type": channel, "number": "447700900000"},
        "from": {"type": channel, "number": "447700900001"},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if expiry is not None:
        body["failover"] = {"expiry_time": expiry, "condition_status": condition}
    return body


def workflow(steps: int, expiry: int = 60, condition: str = "delivered") -> list[dict[str, Any]]:
    return [item(expiry=expiry, condition=condition) for _ in range(steps - 1)] + [
        item(channel="whatsapp", expiry=None)
    ]


class Harness:
    def __init__(self, policy: Policy | None = None, *, echoes: bool = False) -> None:
        self.stores = Stores(dispatches={}, buckets={}, cursors={})
        # Feed every decision back as the processor would read it from the log
        # (where it skips them: they must be no-ops).
        self.echoes = echoes
        self.policy = policy or Policy()
        self.offset = -1
        self.now = T0
        self.outputs: list[Output] = []
        self.log: list[tuple[int, LogEvent]] = []

    def feed(self, event: LogEvent, offset: int | None = None) -> list[Output]:
        if offset is None:
            self.offset += 1
            offset = self.offset
            self.log.append((offset, event))
        result = process(self.stores, 0, offset, event, self.policy)
        assert result.rejected is None, result.rejected
        self.outputs.extend(result.outputs)
        if self.echoes:
            for output in result.outputs:
                if not isinstance(output, SendMessage | DeliverWebhook):
                    self._echo(output)
        return result.outputs

    def _echo(self, decision: Output) -> None:
        dispatch = str(decision.dispatch_uuid)
        before = self.stores.dispatches.get(dispatch)
        self.offset += 1
        self.log.append((self.offset, decision))
        result = process(self.stores, 0, self.offset, decision, self.policy)
        assert result.outputs == [] and result.rejected is None, (decision, result)
        after = self.stores.dispatches.get(dispatch)
        assert after is not None and before is not None
        # Nothing but the offset it has folded up to may change.
        assert _without_offset(after) == _without_offset(before), decision

    def tick(self, seconds_later: float = 0.0) -> list[Output]:
        self.now = self.now + timedelta(seconds=seconds_later)
        return self.feed(Tick(partition=0, now=self.now))

    # --- playing the gateway and the sender ---------------------------------

    def request(
        self, steps: int = 2, *, dispatch: uuid.UUID | None = None, **kwargs: Any
    ) -> uuid.UUID:
        dispatch = dispatch or uuid.uuid4()
        self.feed(
            WorkflowRequested(
                dispatch_uuid=dispatch,
                application_id="app-1",
                workflow=workflow(steps, **kwargs),
                occurred_at=self.now,
            )
        )
        return dispatch

    def submitted(self, dispatch: uuid.UUID, step: int, message_uuid: str | None = None) -> str:
        message_uuid = message_uuid or f"msg-{step}-{dispatch.hex[:6]}"
        self.feed(
            MessageSubmitted(
                dispatch_uuid=dispatch,
                step=step,
                command_id=command_id(str(dispatch), step),
                message_uuid=message_uuid,
                occurred_at=self.now,
            )
        )
        return message_uuid

    def send_failed(self, dispatch: uuid.UUID, step: int, code: int = 1300) -> None:
        self.feed(
            MessageSendFailed(
                dispatch_uuid=dispatch,
                step=step,
                command_id=command_id(str(dispatch), step),
                error=ErrorDetail(code=code, reason="Not part of the provider network"),
                http_status=422,
                occurred_at=self.now,
            )
        )

    def status(
        self,
        dispatch: uuid.UUID,
        message_uuid: str,
        status: str,
        *,
        step: int | None = None,
        price: str | None = None,
        at: datetime | None = None,
    ) -> MessageStatusReceived:
        event = MessageStatusReceived(
            dispatch_uuid=dispatch,
            message_uuid=message_uuid,
            step=step,
            status=status,  # type: ignore[arg-type]
            timestamp=at or self.now,
            to={"type": "sms", "number": "447700900000"},
            from_={"type": "sms", "number": "447700900001"},
            usage=Usage(price=price) if price is not None else None,
            occurred_at=at or self.now,
        )
        self.feed(event)
        return event

    # --- what a user would notice -------------------------------------------

    def state(self, dispatch: uuid.UUID) -> DispatchState:
        state = load(self.stores, str(dispatch))
        assert state is not None
        return state

    def sends(self, dispatch: uuid.UUID) -> list[SendMessage]:
        return [
            o for o in self.outputs if isinstance(o, SendMessage) and o.dispatch_uuid == dispatch
        ]

    def sends_all(self) -> list[SendMessage]:
        return [o for o in self.outputs if isinstance(o, SendMessage)]

    def webhooks(self, dispatch: uuid.UUID, kind: str) -> list[DeliverWebhook]:
        return [
            o
            for o in self.outputs
            if isinstance(o, DeliverWebhook) and o.dispatch_uuid == dispatch and o.kind == kind
        ]

    def started_steps(self, dispatch: uuid.UUID) -> list[int]:
        """Distinct steps sent, in order of first send."""
        steps: list[int] = []
        for send in self.sends(dispatch):
            if send.step not in steps:
                steps.append(send.step)
        return steps

    def final_reports(self, dispatch: uuid.UUID) -> list[dict[str, Any]]:
        """Distinct final reports (by webhook id: what a receiver that dedupes sees)."""
        distinct: dict[uuid.UUID, dict[str, Any]] = {}
        for hook in self.webhooks(dispatch, "final"):
            distinct.setdefault(hook.event_id, hook.payload)
        return list(distinct.values())

    def types(self, dispatch: uuid.UUID) -> list[str]:
        return [o.type for o in self.outputs if getattr(o, "dispatch_uuid", None) == dispatch]


def _without_offset(raw: bytes) -> dict[str, Any]:
    state: dict[str, Any] = orjson.loads(raw)
    state.pop("last_offset", None)
    return state
