"""The Grafana dashboard queries only metrics that a process exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry

import services.gateway.event_log
import services.gateway.metrics
import services.processor.metrics  # noqa: F401 - their import registers the metrics
from projections.console_queries import Figures
from services.console.figures import FiguresCache, FiguresCollector

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dispatch-dashboard.json"
# Prometheus functions and keywords that look like names in an expression.
NOT_METRICS = {
    "sum",
    "rate",
    "increase",
    "histogram_quantile",
    "by",
    "le",
    "status",
    "reason",
    "type",
}
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}


def exported() -> set[str]:
    """Every series name the processes expose: the processor's and the
    gateway's (the default registry, as their /metrics serve it) and the
    console's figures."""
    console = CollectorRegistry()
    figures = FiguresCache(read=None, ttl_s=5)  # type: ignore[arg-type]
    figures.latest = Figures(
        in_flight=1,
        finished={"completed": 1, "error": 1},
        failovers={"timed_out": 1},
        webhooks_abandoned=0,
        final_reports_pending=0,
    )
    console.register(FiguresCollector(figures))
    names: set[str] = set()
    for registry in (REGISTRY, console):
        for family in registry.collect():
            names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


def queried() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    names: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            without_ranges = re.sub(r"\[[^\]]*\]", "", target["expr"])
            without_groups = re.sub(r"by \([^)]*\)", "", without_ranges)
            names.update(re.findall(r"[a-z_][a-z0-9_]*", without_groups))
    return names - NOT_METRICS


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    asked = queried()
    assert len(asked) >= 10
    assert asked - exported() == set()


def test_the_dashboard_shows_the_consoles_figures() -> None:
    asked = queried()
    for figure in (
        "dispatch_projection_dispatches_in_flight",
        "dispatch_projection_dispatches_finished_total",
        "dispatch_projection_failovers_total",
        "dispatch_projection_final_reports_pending",
        "dispatch_projection_webhooks_abandoned_dispatches",
        "dispatch_timer_lateness_seconds_bucket",
    ):
        assert figure in asked
