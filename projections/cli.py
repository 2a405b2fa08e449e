"""``dispatch audit`` and ``dispatch replay``."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import click
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from projections.audit import render_timeline, timeline
from projections.decisions import DecisionReport, Record, compare_decisions
from projections.projector import Projector
from projections.store import (
    Snapshot,
    is_postgresql,
    open_store,
    redacted,
    sqlite_path,
    store_url_from_env,
)
from services.kafka import KafkaSettings
from services.kafka_security import client_options
from services.processor.config import ProcessorConfig


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
    "--store",
    "live_url",
    default=store_url_from_env,
    show_default="$PROJECTOR_STORE_URL, else $PROJECTOR_DB, else .local/projections.sqlite3",
    help="The live projection store to compare with (postgresql://... or sqlite:///path).",
)
@click.option(
    "--db",
    "live_db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A live SQLite store by its file path (instead of --store).",
)
@click.option(
    "--decisions/--no-decisions",
    default=True,
    show_default=True,
    help="Also re-run the failover engine over the log and compare its decisions.",
)
def replay(live_url: str, live_db: Path | None, decisions: bool) -> None:
    """Rebuild the projections from offset 0 and compare them with the live ones."""
    if live_db is not None:
        live_url = str(live_db)
    if not is_postgresql(live_url):
        try:
            path = Path(sqlite_path(live_url))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--store") from exc
        if not path.exists():
            raise click.ClickException(f"no live projection store at {path}")
    try:
        total, differences = asyncio.run(_replay(live_url))
    except (OSError, ValueError, asyncpg.PostgresError) as exc:
        raise click.ClickException(f"live store {redacted(live_url)} unreadable: {exc}") from exc
    if decisions:
        report = asyncio.run(_replay_decisions())
        click.echo(
            f"decisions: {report.reproduced} of {report.recorded} on the log reproduced "
            "by re-running the failover engine"
        )
        total += len(report.differences)
        differences += report.differences
    if total:
        for line in differences[:50]:
            click.echo(f"DIFF {line}")
        raise click.ClickException(f"{total} difference(s) between replay and live")
    click.echo("replay equals live")


async def _replay(live_url: str) -> tuple[int, list[str]]:
    """Rebuild into a throwaway SQLite store up to the live store's offsets,
    then compare the two, streaming: neither side is held in memory."""
    from rich.progress import Progress

    settings = KafkaSettings.from_env()
    live = await open_store(live_url)
    try:
        # One snapshot for the whole run: live projectors may keep writing.
        async with live.snapshot() as live_state:
            positions = await live_state.positions()
            total = sum(positions.values())
            with tempfile.TemporaryDirectory() as tmp:
                fresh = await open_store(str(Path(tmp) / "replay.sqlite3"))
                try:
                    with Progress() as progress:
                        task = progress.add_task("replaying dispatch.events", total=total or 1)
                        projector = Projector(
                            settings, fresh, on_batch=lambda n: progress.advance(task, n)
                        )
                        await projector.start()
                        try:
                            await projector.run(stop_at=positions)
                        finally:
                            await projector.stop()
                        progress.update(task, completed=total or 1)
                    async with fresh.snapshot() as rebuilt:
                        return await compare(live_state, rebuilt)
                finally:
                    await fresh.close()
    finally:
        await live.close()


async def _replay_decisions() -> DecisionReport:
    # The processor's own settings: a replay reads the log the processor
    # reads and decides as the processor does.
    processor = ProcessorConfig.from_env()
    records = await read_log(processor.kafka)
    return compare_decisions(records, processor.policy)


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


# Differences listed at most (all are counted): a store that differs everywhere
# must not fill the memory with their descriptions.
MAX_LISTED = 1000


async def compare(live: Snapshot, rebuilt: Snapshot) -> tuple[int, list[str]]:
    """(how many differences, the first of them) between two stores."""
    total, listed = 0, list[str]()
    async for uuid in _differing_views(live.all_views(), rebuilt.all_views()):
        total += 1
        if len(listed) < MAX_LISTED:
            listed.append(f"view of {uuid}: live and replay differ")
    live_rows = rebuilt_rows = 0
    same_history = True
    async for live_row, rebuilt_row in _zip_longest(
        live.history_digest(), rebuilt.history_digest()
    ):
        live_rows += live_row is not None
        rebuilt_rows += rebuilt_row is not None
        same_history = same_history and live_row == rebuilt_row
    if not same_history:
        total += 1
        listed.append(f"history: live has {live_rows} rows, replay {rebuilt_rows}")
    return total, listed


async def _differing_views(
    left: AsyncIterator[tuple[str, Any]], right: AsyncIterator[tuple[str, Any]]
) -> AsyncIterator[str]:
    """The dispatch ids whose views differ, or exist on one side only (both
    sides ordered by id: a merge join)."""
    a, b = await anext(left, None), await anext(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            yield a[0]
            a = await anext(left, None)
        elif a is None or b[0] < a[0]:
            yield b[0]
            b = await anext(right, None)
        else:
            if a[1] != b[1]:
                yield a[0]
            a, b = await anext(left, None), await anext(right, None)


async def _zip_longest(
    left: AsyncIterator[Any], right: AsyncIterator[Any]
) -> AsyncIterator[tuple[Any, Any]]:
    while True:
        a, b = await anext(left, None), await anext(right, None)
        if a is None and b is None:
            return
        yield a, b
