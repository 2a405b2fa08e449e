"""Re-running the engine over a log reproduces its decisions, and a log whose
decisions were not the engine's is caught."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson

from events.codec import decode_event, encode
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import MessageSubmitted, StepStarted, Tick, TimerScheduled, WorkflowRequested
from projections.decisions import Record, compare_decisions
from services.failover.decide import Policy
from services.failover.factories import timer_scheduled
from services.failover.fold import apply
from services.failover.state import DispatchState
from services.processor.engine import Stores, process
from tests.fixtures_events import T0, sms_item

POLICY = Policy(final_step_limit=timedelta(hours=24))


def live_log() -> list[Record]:
    """What the processor would have written: inputs, each followed by its decisions."""
    dispatch = uuid.UUID(int=42)
    stores = Stores(dispatches={}, buckets={}, cursors={})
    inputs: list[object] = [
        WorkflowRequested(
            dispatch_uuid=dispatch,
            application_id="app",
            workflow=[
                sms_item(failover={"expiry_time": 60, "condition_status": "delivered"}),
                sms_item("447700900002"),
            ],
            occurred_at=T0,
        )
    ]
    log: list[Record] = []
    # Step 0 (60 s expiry) never answers: a tick past its deadline fails it over.
    ticks = [Tick(partition=0, now=T0 + timedelta(seconds=62))]
    while inputs or ticks:
        event = inputs.pop(0) if inputs else ticks.pop(0)
        offset = len(log)
        log.append(Record(0, offset, int(T0.timestamp() * 1000), encode(event)))  # type: ignore[arg-type]
        for output in process(stores, 0, offset, event, POLICY).outputs:  # type: ignore[arg-type]
            if isinstance(output, StepStarted):
                inputs.append(output)
                inputs.append(
                    MessageSubmitted(
                        dispatch_uuid=dispatch,
                        step=output.step,
                        command_id=output.command_id,
                        message_uuid=f"m-{output.step}",
                        occurred_at=T0 + timedelta(seconds=1),
                    )
                )
            elif not isinstance(output, SendMessage | DeliverWebhook):
                inputs.append(output)  # a decision: its echo comes back through the log
    return log


def test_the_engine_reproduces_every_decision_of_its_own_log() -> None:
    report = compare_decisions(live_log(), POLICY)
    assert report.differences == []
    # Two StepStarted, the StepTimedOut, the last step's TimerScheduled.
    assert report.recorded == 4
    assert report.reproduced == report.recorded


def test_an_expiry_timer_of_an_older_log_is_a_fact_not_a_decision() -> None:
    # Logs written before the fold armed expiry deadlines itself carry a
    # TimerScheduled after a non-last step's MessageSubmitted (schema version
    # 1). The replay no longer takes that decision and does not expect it.
    log = live_log()
    [submitted] = [r for r in log if isinstance(decode_event(r.value), MessageSubmitted)][:1]
    old_timer = orjson.loads(
        encode(
            TimerScheduled(
                event_id=timer_scheduled_id(),
                dispatch_uuid=uuid.UUID(int=42),
                occurred_at=T0 + timedelta(seconds=1),
                step=0,
                deadline_at=T0 + timedelta(seconds=61),
                reason="expiry",
            )
        )
    )
    old_timer["schema_version"] = 1
    at = submitted.offset + 1
    log.insert(at, Record(0, at, submitted.timestamp_ms, orjson.dumps(old_timer)))
    log = [Record(0, n, r.timestamp_ms, r.value) for n, r in enumerate(log)]
    report = compare_decisions(log, POLICY)
    assert report.differences == []
    assert report.recorded == 4 and report.reproduced == 4


def timer_scheduled_id() -> uuid.UUID:
    """The id the processor gives a step's submission timer."""
    return timer_scheduled(_requested_state(), 0, T0, T0 + timedelta(seconds=61), "expiry").event_id


def _requested_state() -> DispatchState:
    state = apply(
        None,
        WorkflowRequested(
            dispatch_uuid=uuid.UUID(int=42),
            application_id="app",
            workflow=[
                sms_item(failover={"expiry_time": 60, "condition_status": "delivered"}),
                sms_item("447700900002"),
            ],
            occurred_at=T0,
        ),
    )
    assert state is not None
    return state


def test_a_decision_the_engine_would_not_take_is_reported() -> None:
    log = live_log()
    forged = StepStarted(
        dispatch_uuid=uuid.UUID(int=42),
        step=1,
        channel="sms",
        command_id=uuid.uuid4(),
        deadline_at=T0 + timedelta(days=1),
    )
    log.append(Record(0, len(log), log[-1].timestamp_ms, encode(forged)))
    report = compare_decisions(log, POLICY)
    assert any("not replayed" in d for d in report.differences)
