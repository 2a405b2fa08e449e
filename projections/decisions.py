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
from typing import TypeGuard

from events.codec import LogEvent, UndecodableMessage, decode_event, encode
from events.dispatch import (
    DispatchEvent,
    StepStarted,
    StepTimedOut,
    TimerScheduled,
    UsageAmended,
    WorkflowCompleted,
    WorkflowFailed,
)
from services.failover.decide import Policy
from services.processor.engine import Stores, process

DECISIONS = (
    StepStarted,
    TimerScheduled,
    StepTimedOut,
    WorkflowCompleted,
    WorkflowFailed,
    UsageAmended,
)


def is_decision(event: LogEvent) -> TypeGuard[DispatchEvent]:
    """A decision the rules take today. Older logs also hold timers that are
    facts now (``expiry``: the fold arms it from the submission;
    ``start_guard``: StepStarted carries it), named so by the codec's upcasters."""
    if isinstance(event, TimerScheduled):
        return event.reason == "final_step_limit"
    return isinstance(event, DECISIONS)


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
    end_ms = records[-1].timestamp_ms if records else 0
    for record in records:
        try:
            event = decode_event(record.value)
        except UndecodableMessage:
            continue  # dead-lettered live as well
        if is_decision(event):
            recorded.setdefault(str(event.event_id), _comparable(event))
        result = process(stores, partition, record.offset, event, policy)
        for output in result.outputs:
            if isinstance(output, DECISIONS):
                produced.setdefault(
                    str(output.event_id), (_comparable(output), record.timestamp_ms)
                )
    report.recorded += len(recorded)
    for event_id, body in recorded.items():
        replayed = produced.get(event_id)
        if replayed is None:
            report.differences.append(f"p{partition}: decision {event_id} on the log, not replayed")
        elif replayed[0] != body:
            report.differences.append(f"p{partition}: decision {event_id} replayed differently")
        else:
            report.reproduced += 1
    for event_id, (_, input_ms) in produced.items():
        if event_id not in recorded and end_ms - input_ms > in_flight_s * 1000:
            report.differences.append(f"p{partition}: replay decided {event_id}, the log did not")
