"""``dispatch audit`` and ``dispatch replay``."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from projections.audit import render_timeline, timeline
from projections.decisions import DecisionReport, Record, compare_decisions
from projections.projector import Projector
from projections.store import ProjectionStore
from services.kafka import KafkaSettings
from services.kafka_security import client_options
from services.processor.decide import Policy


def _projector_url() -> str:
    return os.environ.get("PROJECTOR_URL", "http://127.0.0.1:8070")


@click.command()
@click.argument("dispatch_uuid")
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
def audit(dispatch_uuid: str, as_json: bool) -> None:
    """The full timeline of one dispatch: request, sends, statuses, timers, webhooks."""
    base = _projector_url()
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            view = client.get(f"/internal/dispatches/{dispatch_uuid}")
            history = client.get(f"/internal/dispatches/{dispatch_uuid}/events")
    except httpx.HTTPError as exc:
        raise click.ClickException(f"projector at {base} unreachable: {exc}") from exc
    if view.status_code == 404:
        raise click.ClickException(f"no dispatch {dispatch_uuid}")
    view.raise_for_status()
    history.raise_for_status()
    entries = timeline(history.json()["events"])
    if as_json:
        out = {"dispatch_uuid": dispatch_uuid, "view": view.json(), "timeline": entries}
        sys.stdout.write(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        render_timeline(view.json(), entries)


@click.command()
@click.option(
    "--db",
    "live_db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=lambda: os.environ.get("PROJECTOR_DB", ".local/projections.sqlite3"),
    show_default="$PROJECTOR_DB or .local/projections.sqlite3",
    help="The live projection store to compare with.",
)
@click.option(
    "--decisions/--no-decisions",
    default=True,
    show_default=True,
    help="Also re-run the failover engine over the log and compare its decisions.",
)
def replay(live_db: Path, decisions: bool) -> None:
    """Rebuild the projections from offset 0 and compare them with the live ones."""
    if not live_db.exists():
        raise click.ClickException(f"no live projection store at {live_db}")
    differences = asyncio.run(_replay(live_db))
    if decisions:
        report = asyncio.run(_replay_decisions())
        click.echo(
            f"decisions: {report.reproduced} of {report.recorded} on the log reproduced "
            "by re-running the failover engine"
        )
        differences += report.differences
    if differences:
        for line in differences[:50]:
            click.echo(f"DIFF {line}")
        raise click.ClickException(f"{len(differences)} difference(s) between replay and live")
    click.echo("replay equals live")


async def _replay(live_db: Path) -> list[str]:
    from rich.progress import Progress

    settings = KafkaSettings.from_env()
    live = ProjectionStore(live_db)
    with live.snapshot():
        positions = live.positions()
        live_views = dict(live.all_views())
        live_history = list(live.history_digest())
    live.close()
    total = sum(positions.values())
    with tempfile.TemporaryDirectory() as tmp:
        fresh = ProjectionStore(Path(tmp) / "replay.sqlite3")
        with Progress() as progress:
            task = progress.add_task("replaying dispatch.events", total=total or 1)
            projector = Projector(settings, fresh, on_batch=lambda n: progress.advance(task, n))
            await projector.start()
            try:
                await projector.run(stop_at=positions)
            finally:
                await projector.stop()
            progress.update(task, completed=total or 1)
        rebuilt_views = dict(fresh.all_views())
        rebuilt_history = list(fresh.history_digest())
        fresh.close()
    return compare(live_views, rebuilt_views, live_history, rebuilt_history)


async def _replay_decisions() -> DecisionReport:
    settings = KafkaSettings.from_env()
    limit = float(os.environ.get("PROCESSOR_FINAL_STEP_LIMIT_S", "86400"))
    records = await read_log(settings)
    return compare_decisions(records, Policy(final_step_limit=timedelta(seconds=limit)))


async def read_log(settings: KafkaSettings) -> list[Record]:
    """Every record of dispatch.events up to the end offsets at the time of the call."""
    topic = settings.topics.events
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        **client_options(),
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Record] = []
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, batch in batches.items():
                records.extend(
                    Record(r.partition, r.offset, r.timestamp, r.value)
                    for r in batch
                    if r.offset < ends[tp]
                )
                if batch and batch[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


def compare(
    live_views: dict[str, Any],
    rebuilt_views: dict[str, Any],
    live_history: list[Any],
    rebuilt_history: list[Any],
) -> list[str]:
    differences = []
    for uuid in sorted(set(live_views) | set(rebuilt_views)):
        if live_views.get(uuid) != rebuilt_views.get(uuid):
            differences.append(f"view of {uuid}: live and replay differ")
    if live_history != rebuilt_history:
        differences.append(
            f"history: live has {len(live_history)} rows, replay {len(rebuilt_history)}"
        )
    return differences
