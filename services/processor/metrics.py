"""Prometheus metrics of the processor."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0)

TIMER_LATENESS = Histogram(
    "dispatch_timer_lateness_seconds",
    "How long after its deadline a timer fired: tick time minus deadline.",
    buckets=LATENESS_BUCKETS,
)
TIMER_FIRE_DELAY = Histogram(
    "dispatch_timer_fire_delay_seconds",
    "Wall clock when the timeout was processed minus the deadline.",
    buckets=LATENESS_BUCKETS,
)
EVENTS_PROCESSED = Counter(
    "dispatch_processor_events_total", "Events of dispatch.events folded.", ["type"]
)
_PROCESSED_BY_TYPE: dict[str, Any] = {}


def count_processed(counts: dict[str, int]) -> None:
    """Add a batch's count of folded events per type to ``EVENTS_PROCESSED``:
    once per type and batch (the counter takes a lock per increment), with the
    labelled child looked up once per type (``labels`` costs more still)."""
    for event_type, count in counts.items():
        child = _PROCESSED_BY_TYPE.get(event_type)
        if child is None:
            child = _PROCESSED_BY_TYPE[event_type] = EVENTS_PROCESSED.labels(event_type)
        child.inc(count)


DEAD_LETTERS = Counter(
    "dispatch_processor_dead_letters_total", "Events sent to the dead-letter topic."
)
ECHOES_SKIPPED = Counter(
    "dispatch_processor_echoes_skipped_total",
    "The processor's own decisions read back from dispatch.events and skipped.",
)
BATCH_SIZE = Histogram(
    "dispatch_processor_batch_events",
    "Events per batch folded by the agent (own decisions read back not counted).",
    # A batch is up to 16 fetches of up to 1,000 records (see app.py).
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 16000),
)
STATUSES_DROPPED = Counter(
    "dispatch_processor_statuses_dropped_total",
    "Statuses not kept nor webhooked: their message had reached its bound of distinct statuses.",
)
