"""The overview's figures: read from the projection store and the processor's
``/metrics``, sampled every few seconds for the small charts, and exported on
the console's own ``/metrics`` so Prometheus and the page show the same numbers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from projections import console_queries as queries

log = logging.getLogger(__name__)

LATENESS = "dispatch_timer_lateness_seconds"
SAMPLES_KEPT = 90  # 15 minutes at one sample each 10 s
FIGURES_TTL_S = 5.0


class FiguresCache:
    """The last figures read, for ``ttl_s``; one reader at a time."""

    def __init__(self, read: Callable[[], Awaitable[queries.Figures]], ttl_s: float) -> None:
        self._read = read
        self._ttl_s = ttl_s
        self._lock = asyncio.Lock()
        self.latest: queries.Figures | None = None
        self._read_at = 0.0

    async def get(self) -> queries.Figures:
        async with self._lock:
            if self.latest is None or time.monotonic() - self._read_at > self._ttl_s:
                self.latest = await self._read()
                self._read_at = time.monotonic()
            return self.latest


def quantile_from_buckets(buckets: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of a cumulative
    Prometheus histogram (``[(le, count), ...]``), as Prometheus would bound it."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    for bound, count in buckets:
        if count >= rank:
            return bound
    return buckets[-1][0]


def lateness_buckets(metrics_text: str) -> list[tuple[float, float]]:
    found: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(metrics_text):
        if family.name != LATENESS:
            continue
        for sample in family.samples:
            if sample.name == f"{LATENESS}_bucket":
                found.append((float(sample.labels["le"]), sample.value))
    return sorted(found)


@dataclass
class Sampler:
    """Keeps the recent history of the figures that are a level, not a count."""

    read_figures: Callable[[], Awaitable[queries.Figures]]
    processor_metrics_url: str | None
    interval_s: float = 10.0
    internal_token: str | None = None
    samples: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    _previous_buckets: list[tuple[float, float]] = field(default_factory=list)

    async def lateness_p99(self, client: httpx.AsyncClient) -> float | None:
        """p99 timer lateness over the last interval (None: no timer fired or no processor)."""
        if not self.processor_metrics_url:
            return None
        try:
            response = await client.get(self.processor_metrics_url)
        except httpx.HTTPError as exc:
            log.debug("processor metrics unavailable: %s", exc)
            return None
        now = lateness_buckets(response.text)
        before = dict(self._previous_buckets)
        self._previous_buckets = now
        delta = [(le, count - before.get(le, 0)) for le, count in now]
        return quantile_from_buckets(delta, 0.99)

    async def sample(self, client: httpx.AsyncClient) -> dict[str, Any]:
        figures = await self.read_figures()
        sample = {
            "at": time.time(),
            "in_flight": figures.in_flight,
            "final_reports_pending": figures.final_reports_pending,
            "webhooks_abandoned": figures.webhooks_abandoned_total,
            "webhooks_pending": figures.webhooks_pending,
            "lateness_p99": await self.lateness_p99(client),
        }
        self.samples.append(sample)
        return sample

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.internal_token}"} if self.internal_token else {}
        async with httpx.AsyncClient(timeout=2.0, headers=headers) as client:
            while True:
                try:
                    await self.sample(client)
                except Exception:  # a failed sample must not end the sampling
                    log.exception("sampling the overview's figures failed")
                await asyncio.sleep(self.interval_s)

    def series(self, name: str) -> list[float]:
        return [float(s[name] or 0) for s in self.samples]


class FiguresCollector:
    """Prometheus collector: the projection's figures, as last read (the
    ``/metrics`` route reads them, through the cache, before each scrape)."""

    def __init__(self, cache: FiguresCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Any]:
        figures = self._cache.latest
        if figures is None:
            return
        yield GaugeMetricFamily(
            "dispatch_projection_dispatches_in_flight",
            "Dispatches not yet completed or failed.",
            value=figures.in_flight,
        )
        finished = CounterMetricFamily(
            "dispatch_projection_dispatches_finished",
            "Dispatches that ended, by final status.",
            labels=["status"],
        )
        for status, count in figures.finished.items():
            finished.add_metric([status], count)
        yield finished
        failovers = CounterMetricFamily(
            "dispatch_projection_failovers",
            "Failovers to a next step, by how the step before ended.",
            labels=["reason"],
        )
        for reason, count in figures.failovers.items():
            failovers.add_metric([reason], count)
        yield failovers
        yield GaugeMetricFamily(
            "dispatch_projection_webhooks_abandoned_dispatches",
            "Dispatches with a webhook abandoned and not delivered since.",
            value=figures.webhooks_abandoned,
        )
        yield GaugeMetricFamily(
            "dispatch_projection_webhooks_abandoned",
            "Webhooks (status and final) abandoned and not delivered since.",
            value=figures.webhooks_abandoned_total,
        )
        yield GaugeMetricFamily(
            "dispatch_projection_webhooks_pending",
            "Webhooks (status and final) sent to the deliverer, not yet delivered nor abandoned.",
            value=figures.webhooks_pending,
        )
        yield GaugeMetricFamily(
            "dispatch_projection_final_reports_pending",
            "Finished dispatches whose final report is neither delivered nor abandoned yet.",
            value=figures.final_reports_pending,
        )
