"""Re-run the failover decisions over the recorded log and compare.

Every record of ``dispatch.events`` (requests, sends, statuses, ticks, and the
processor's own decisions) is fed, partition by partition and in offset order,
through the same pure engine the processor runs, over in-memory stores. The
decisions it takes must be exactly the decisions on the log: same ids, same
content. A decision on the log that the replay does not take, or takes
differently, is a difference. A decision the replay takes that is not on the
log yet counts only if its input is older than ``in_flight_s`` before the end
of its partition (the processor may simply not have written it yet).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from events.base import uuid_text
from events.codec import UndecodableMessage, decode_event, encode
from events.dispatch import (
    DispatchEvent,
    StepStarted,
    StepTimedOut,
    TimerScheduled,
    UsageAmended,
    WorkflowCompleted,
    WorkflowFailed,
)
from services.processor.decide import Policy
from services.processor.engine import Stores, load, process

DECISIONS = (
    StepStarted,
    TimerScheduled,
    StepTimedOut,
    WorkflowCompleted,
    WorkflowFailed,
    UsageAmended,
)


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes


@dataclass
class DecisionReport:
    recorded: int = 0
    reproduced: int = 0
    differences: list[str] = field(default_factory=list)


def _comparable(event: DispatchEvent) -> bytes:
    return encode(event)


def compare_decisions(
    records: Iterable[Record], policy: Policy, *, in_flight_s: float = 5.0
) -> DecisionReport:
    by_partition: dict[int, list[Record]] = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)
    report = DecisionReport()
    for partition, partition_records in sorted(by_partition.items()):
        partition_records.sort(key=lambda r: r.offset)
        _compare_partition(partition, partition_records, policy, in_flight_s, report)
    return report


def _compare_partition(
    partition: int,
    records: list[Record],
    policy: Policy,
    in_flight_s: float,
    report: DecisionReport,
) -> None:
    stores = Stores(dispatches={}, buckets={}, cursors={})
    recorded: dict[str, bytes] = {}
    produced: dict[str, tuple[bytes, int]] = {}
    # Expiry timers of logs written when they were decision events; the fold
    # now arms the same deadline from the submission itself.
    implied: set[str] = set()
    end_ms = records[-1].timestamp_ms if records else 0
    for record in records:
        try:
            event = decode_event(record.value)
        except UndecodableMessage:
            continue  # dead-lettered live as well
        if isinstance(event, DECISIONS):
            recorded.setdefault(str(event.event_id), _comparable(event))
        result = process(stores, partition, record.offset, event, policy)
        if isinstance(event, TimerScheduled) and _armed_by_fold(stores, event):
            implied.add(str(event.event_id))
        for output in result.outputs:
            if isinstance(output, DECISIONS):
                produced.setdefault(
                    str(output.event_id), (_comparable(output), record.timestamp_ms)
                )
    report.recorded += len(recorded)
    for event_id, body in recorded.items():
        replayed = produced.get(event_id)
        if replayed is None and event_id in implied:
            report.reproduced += 1
        elif replayed is None:
            report.differences.append(f"p{partition}: decision {event_id} on the log, not replayed")
        elif replayed[0] != body:
            report.differences.append(f"p{partition}: decision {event_id} replayed differently")
        else:
            report.reproduced += 1
    for event_id, (_, input_ms) in produced.items():
        if event_id not in recorded and end_ms - input_ms > in_flight_s * 1000:
            report.differences.append(f"p{partition}: replay decided {event_id}, the log did not")


def _armed_by_fold(stores: Stores, timer: TimerScheduled) -> bool:
    """An expiry ``TimerScheduled`` from an older log whose deadline the replay's
    fold armed by itself, from the step's submission."""
    if timer.reason != "expiry":
        return False
    state = load(stores, uuid_text(timer.dispatch_uuid))
    if state is None or timer.step >= len(state.steps):
        return False
    step = state.steps[timer.step]
    return step.armed_on_submission and step.deadline_at == timer.deadline_at.isoformat()
