"""Records ``fixtures/recorded_log.jsonl``: scenarios run through the engine,
every record of ``dispatch.events`` in log order with the outputs it led to and
the stored state of its dispatch afterwards.

    .venv/bin/python -m tests.unit.failover.record_fixture --overwrite

The committed fixture was recorded with the event and state shapes of the
processor before the failover rules moved to ``services/failover`` (schema
version 1 everywhere): ``test_recorded_log.py`` replays it through today's code
and expects the same decisions, ids, final reports and stored states.
"""

from __future__ import annotations

import sys
import uuid
from datetime import timedelta
from pathlib import Path

import orjson

from events.base import uuid_text
from events.codec import LogEvent, encode
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import (
    ErrorDetail,
    MessageOutcomeUnknown,
    MessageSendFailed,
    MessageStatusReceived,
    Tick,
    Usage,
    WebhookAbandoned,
    WebhookDelivered,
)
from services.failover.factories import command_id
from tests.unit.processor.harness import T0, Harness

FIXTURE = Path(__file__).parent / "fixtures" / "recorded_log.jsonl"


class Recorder(Harness):
    """The harness, writing down every record and what it led to."""

    def __init__(self) -> None:
        super().__init__(echoes=False)
        self.lines: list[bytes] = []
        self.counter = 0

    def feed(self, event: LogEvent, offset: int | None = None) -> list:  # type: ignore[override]
        self.offset += 1
        offset = self.offset
        outputs = super().feed(event, offset)
        dispatch = getattr(event, "dispatch_uuid", None)
        state = self.stores.dispatches.get(uuid_text(dispatch)) if dispatch else None
        self.lines.append(
            orjson.dumps(
                {
                    "offset": offset,
                    "record": orjson.loads(encode(event)),
                    "outputs": [orjson.loads(encode(o)) for o in outputs],
                    "state": orjson.loads(state) if state is not None else None,
                }
            )
        )
        # The decisions come back on the log, as the processor reads them.
        for output in outputs:
            if not isinstance(output, SendMessage | DeliverWebhook):
                self.feed(output)
        return outputs

    def next_uuid(self) -> uuid.UUID:
        self.counter += 1
        return uuid.UUID(int=0xD15A7C4 * 1000 + self.counter)

    def unknown(self, dispatch: uuid.UUID, step: int, ago: float = 0) -> None:
        self.feed(
            MessageOutcomeUnknown(
                dispatch_uuid=dispatch,
                step=step,
                command_id=command_id(str(dispatch), step),
                attempted_at=self.now - timedelta(seconds=ago),
                reason="read timed out",
                occurred_at=self.now,
            )
        )

    def webhook_outcome(self, dispatch: uuid.UUID, delivered: bool, kind: str = "final") -> None:
        hook = next(w for w in self.webhooks(dispatch, kind))
        if delivered:
            self.feed(
                WebhookDelivered(
                    dispatch_uuid=dispatch,
                    webhook_id=hook.event_id,
                    kind=kind,  # type: ignore[arg-type]
                    attempts=1,
                    http_status=200,
                    occurred_at=self.now,
                )
            )
        else:
            self.feed(
                WebhookAbandoned(
                    dispatch_uuid=dispatch,
                    webhook_id=hook.event_id,
                    kind=kind,  # type: ignore[arg-type]
                    attempts=8,
                    reason="HTTP 500",
                    http_status=500,
                    occurred_at=self.now,
                )
            )

    def tick_to(self, seconds: float) -> None:
        self.now = self.now + timedelta(seconds=seconds)
        self.feed(Tick(partition=0, now=self.now))


def scenarios(r: Recorder) -> None:
    # 1. Delivered on the first step, with a price; the final report is delivered.
    d1 = r.request(dispatch=r.next_uuid(), steps=2, expiry=60)
    m1 = r.submitted(d1, 0)
    r.tick_to(1)
    r.status(d1, m1, "submitted", step=0)
    r.status(d1, m1, "delivered", step=0, price="0.0333")
    r.webhook_outcome(d1, delivered=True)
    r.webhook_outcome(d1, delivered=True, kind="status")
    # A price after the final report: UsageAmended.
    r.status(d1, m1, "read", step=0, price="0.0400")

    # 2. Failover on expiry, then the last step delivered ("read" condition).
    d2 = r.request(dispatch=r.next_uuid(), steps=3, expiry=30, condition="read")
    m2 = r.submitted(d2, 0)
    r.status(d2, m2, "delivered", step=0)  # not "read": the condition waits
    r.tick_to(29)
    r.tick_to(2)  # past the 30 s expiry
    m2b = r.submitted(d2, 1)
    r.tick_to(31)
    m2c = r.submitted(d2, 2)
    r.status(d2, m2c, "delivered", step=2, price="0.05")
    r.status(d2, m2, "read", step=0)  # late: webhooked, decides nothing
    r.status(d2, m2b, "rejected")  # late, without a step

    # 3. Failover on rejection, then a send failure on the last step: error.
    d3 = r.request(dispatch=r.next_uuid(), steps=2, expiry=60)
    m3 = r.submitted(d3, 0)
    r.status(d3, m3, "rejected", step=0)
    r.send_failed(d3, 1)
    r.webhook_outcome(d3, delivered=False)

    # 4. Unknown outcome resolved by a status naming its step.
    d4 = r.request(dispatch=r.next_uuid(), steps=2, expiry=60)
    r.tick_to(1)
    r.unknown(d4, 0, ago=5)
    r.status(d4, "msg-by-ref", "delivered", step=0, price="0.01")

    # 5. Unknown outcome never resolved: its deadline fails over; the last
    #    step never answers and the final-step limit ends it in error.
    d5 = r.request(dispatch=r.next_uuid(), steps=2, expiry=20)
    r.unknown(d5, 0)
    r.tick_to(21)
    m5 = r.submitted(d5, 1)
    r.status(d5, m5, "submitted", step=1)
    r.tick_to(r.policy.final_step_limit.total_seconds() + 1)

    # 6. A status that raced ahead of its submission; then many statuses,
    #    past the per-message bound, duplicates among them.
    d6 = r.request(dispatch=r.next_uuid(), steps=1)
    r.status(d6, "msg-early", "submitted")
    r.submitted(d6, 0, "msg-early")
    for n in range(20):
        r.status(d6, "msg-early", "submitted", at=T0 + timedelta(seconds=n))
        r.status(d6, "msg-early", "submitted", at=T0 + timedelta(seconds=n))
    r.status(d6, "msg-early", "undeliverable", step=0)

    # 7. Send failure on a non-last step fails over at once.
    d7 = r.request(dispatch=r.next_uuid(), steps=2, expiry=60)
    r.feed(
        MessageSendFailed(
            dispatch_uuid=d7,
            step=0,
            command_id=r.sends(d7)[0].event_id,
            error=ErrorDetail(code=1300, reason="Not part of the provider network"),
            http_status=422,
            occurred_at=r.now,
        )
    )
    m7 = r.submitted(d7, 1)
    r.status(d7, m7, "delivered", step=1)
    r.feed(
        MessageStatusReceived(
            dispatch_uuid=d7,
            message_uuid=m7,
            step=1,
            status="delivered",
            timestamp=r.now,
            usage=Usage(price="0.02", currency="GBP"),
            occurred_at=r.now,
        )
    )


def main() -> None:
    if "--overwrite" not in sys.argv:
        # Recorded again now, it would hold today's shapes, not the old ones.
        raise SystemExit(
            "the committed fixture is the old shapes' record: --overwrite to replace it"
        )
    recorder = Recorder()
    recorder.now = T0
    scenarios(recorder)
    FIXTURE.write_bytes(b"\n".join(recorder.lines) + b"\n")
    print(f"{len(recorder.lines)} records -> {FIXTURE}")


if __name__ == "__main__":
    main()
