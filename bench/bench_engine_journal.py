"""The pure engine with and without the unit of work's journal, alternated.

    .venv/bin/python bench/bench_engine_journal.py [--dispatches 20000] [--rounds 3]

Each round folds the same shape of traffic (``WorkflowRequested``,
``MessageSubmitted``, ``delivered`` per dispatch) through ``engine.process``
over dict stores, once with the journal (as the processor runs) and once with
plain dicts behind a no-op unit of work, and prints CPU time per input event.
No Kafka: this isolates what the journal adds to each event.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events.dispatch import MessageStatusReceived, MessageSubmitted, WorkflowRequested
from services.failover.decide import Policy
from services.failover.factories import command_id
from services.processor.engine import Stores, process
from tests.unit.processor.harness import T0, workflow


class PlainStores(Stores):
    """The same stores without the journal: writes go straight to the dicts."""

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def savepoint(self) -> tuple[int, int, int]:
        return (0, 0, 0)

    def rollback(self, savepoint: tuple[int, int, int] = (0, 0, 0)) -> None:
        return None

    def commit(self) -> None:
        return None


def traffic(dispatches: int) -> list[object]:
    events: list[object] = []
    for n in range(dispatches):
        d = uuid.uuid4()
        events += [
            WorkflowRequested(
                dispatch_uuid=d, application_id="a", workflow=workflow(2), occurred_at=T0
            ),
            MessageSubmitted(
                dispatch_uuid=d,
                step=0,
                command_id=command_id(str(d), 0),
                message_uuid=f"m{n}",
                occurred_at=T0,
            ),
            MessageStatusReceived(
                dispatch_uuid=d,
                message_uuid=f"m{n}",
                status="delivered",
                timestamp=T0,
                occurred_at=T0,
            ),
        ]
    return events


def cpu_us_per_event(stores: Stores, events: list[object]) -> float:
    policy = Policy()
    started = time.process_time()
    for offset, event in enumerate(events):
        process(stores, 0, offset, event, policy)  # type: ignore[arg-type]
    return (time.process_time() - started) / len(events) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dispatches", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for n in range(1, args.rounds + 1):
        journal = cpu_us_per_event(
            Stores(dispatches={}, buckets={}, cursors={}), traffic(args.dispatches)
        )
        plain = cpu_us_per_event(
            PlainStores(dispatches={}, buckets={}, cursors={}), traffic(args.dispatches)
        )
        print(f"round {n}: journal {journal:.1f} µs/event, no journal {plain:.1f} µs/event")


if __name__ == "__main__":
    main()
