"""The console's index of the store, kept by triggers, and its queries: what
an operator filters, pages and counts, on a store written the projector's way,
on SQLite and on PostgreSQL (``store_url``)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from events.codec import encode
from events.commands import DeliverWebhook
from events.dispatch import WebhookAbandoned, WebhookDelivered
from projections import console_queries as queries
from projections import view as views
from projections.console_schema import ensure_console_schema
from projections.sqlite_store import SQLiteStore
from projections.store import Batch, HistoryRow, ProjectionStore, open_store
from services.console.store import open_console_store
from services.failover.decide import Policy
from services.processor.engine import Stores, process
from tests.fixtures_events import T0, failover_history, rejected_history


async def project(store: ProjectionStore, events: list[Any], offset: int = 0) -> int:
    """Write events one batch each (a view rewritten many times, as in life)."""
    for event in events:
        uuid_ = str(event.dispatch_uuid)
        batch = Batch(views={}, history=[], messages={}, positions={0: offset + 1})
        updated = views.apply(await store.view(uuid_), event)
        if updated is not None:
            batch.views[uuid_] = updated
        batch.history.append(
            HistoryRow(0, offset, uuid_, event.type, event.occurred_at.isoformat(), encode(event))
        )
        if event.type == "MessageSubmitted":
            batch.messages[f"{event.message_uuid}-{uuid_}"] = (uuid_, event.step)
        at_now = (await store.positions()).get(0)  # a test may skip offsets
        await store.write(batch, {0: at_now})
        offset += 1
    return offset


def at(events: list[Any], moment: datetime) -> list[Any]:
    """The same history, shifted to start at ``moment``."""
    shift = moment - T0
    return [e.model_copy(update={"occurred_at": e.occurred_at + shift}) for e in events]


def rejected_at(dispatch: uuid.UUID, app: str, moment: datetime) -> list[Any]:
    events = rejected_history(dispatch, app)
    return [
        e.model_copy(update={"occurred_at": moment + timedelta(seconds=n)})
        for n, e in enumerate(events)
    ]


_OPEN: list[ProjectionStore] = []


def opened(store: ProjectionStore) -> ProjectionStore:
    _OPEN.append(store)
    return store


@pytest.fixture(autouse=True)
async def _close_stores() -> AsyncIterator[None]:
    yield
    while _OPEN:
        await _OPEN.pop().close()


async def store_with(url: str, count: int = 7) -> tuple[ProjectionStore, list[str]]:
    """``count`` dispatches a minute apart, alternating: failed over and
    completed (app-a), sent and refused (app-b)."""
    store = opened(await open_store(url))
    offset = 0
    uuids = []
    for i in range(count):
        dispatch = uuid.UUID(int=i + 1, version=4)
        moment = T0 + timedelta(minutes=i)
        if i % 2 == 0:
            events = at(failover_history(dispatch, "app-a"), moment)
        else:
            events = rejected_at(dispatch, "app-b", moment)
        offset = await project(store, events, offset)
        uuids.append(str(dispatch))
    return store, uuids


async def read(store: ProjectionStore, query: Any) -> Any:
    """``query`` through the console's own reader of the store the test wrote."""
    console = open_console_store(store.description)
    try:
        return await console.read(query)
    finally:
        await console.close()


async def test_newest_first_in_pages_that_follow_on_without_gaps_or_repeats(store_url: str) -> None:
    store, uuids = await store_with(store_url, 7)
    seen: list[str] = []
    before = None
    while True:
        page = await read(
            store,
            lambda db, after=before: queries.list_dispatches(
                db, queries.Filters(before=after), limit=3
            ),
        )
        seen += [r.dispatch_uuid for r in page.rows]
        if page.next_before is None:
            break
        before = page.next_before
    assert seen == list(reversed(uuids))


async def test_each_filter_narrows_to_what_it_names(store_url: str) -> None:
    store, uuids = await store_with(store_url, 7)

    async def listed(**kwargs: Any) -> list[str]:
        page = await read(store, lambda db: queries.list_dispatches(db, queries.Filters(**kwargs)))
        return [r.dispatch_uuid for r in page.rows]

    failed_over = [u for i, u in enumerate(uuids) if i % 2 == 0][::-1]
    refused = [u for i, u in enumerate(uuids) if i % 2 == 1][::-1]
    assert await listed(application_id="app-a") == failed_over
    assert await listed(status="error") == refused
    assert await listed(status="completed", application_id="app-b") == []
    assert await listed(channel="whatsapp") == failed_over
    assert await listed(channel="sms") == list(reversed(uuids))
    assert await listed(failed_over=True) == failed_over
    since, until = (T0 + timedelta(minutes=m) for m in (2, 4))
    assert await listed(since=since.isoformat(), until=until.isoformat()) == [uuids[3], uuids[2]]
    assert await listed(search=uuids[3]) == [uuids[3]]
    assert await listed(search=uuids[3][:30]) == list(reversed(uuids))  # a prefix they share
    assert await listed(search=f"m-1-{uuids[4]}"[:12]) != []  # by message uuid
    assert await listed(search="ffffffff") == []


async def test_a_row_says_channels_and_flags(store_url: str) -> None:
    store, uuids = await store_with(store_url, 2)
    rows = {
        r.dispatch_uuid: r
        for r in (await read(store, lambda db: queries.list_dispatches(db, queries.Filters()))).rows
    }
    failed_over, refused = rows[uuids[0]], rows[uuids[1]]
    assert (failed_over.status, failed_over.failed_over) == ("completed", True)
    assert failed_over.channels == ["whatsapp", "sms"]
    assert failed_over.finished_at is not None
    assert (refused.status, refused.failed_over, refused.channels) == ("error", False, ["sms"])


async def test_figures_count_flight_outcomes_failovers_and_abandoned_webhooks(
    store_url: str,
) -> None:
    store, _ = await store_with(store_url, 5)
    in_flight = uuid.uuid4()
    offset = await project(store, at(failover_history(in_flight, "app-a")[:3], T0), 100)
    abandoned = uuid.uuid4()
    events = failover_history(abandoned, "app-a")
    final = next(e for e in events if isinstance(e, WebhookDelivered) and e.kind == "final")
    gave_up = WebhookAbandoned(
        dispatch_uuid=abandoned,
        webhook_id=final.webhook_id,
        kind="final",
        attempts=1,
        reason="not retryable: HTTP 410",
        http_status=410,
        occurred_at=final.occurred_at,
    )
    await project(store, [e for e in events if e is not final] + [gave_up], offset)
    figures = await read(store, queries.figures)
    assert figures.in_flight == 1
    assert figures.finished == {"completed": 4, "error": 2}
    assert figures.failovers == {"timed_out": 4}
    assert figures.webhooks_abandoned == 1
    # The refused ones' histories end before their final report is delivered.
    assert figures.final_reports_pending == 2
    found = (
        await read(store, lambda db: queries.list_dispatches(db, queries.Filters(abandoned=True)))
    ).rows
    assert [r.dispatch_uuid for r in found] == [str(abandoned)]


async def test_per_minute_series_have_every_minute_of_the_window(store_url: str) -> None:
    store, _ = await store_with(store_url, 4)
    series = await read(
        store, lambda db: queries.per_minute(db, T0 + timedelta(minutes=9), minutes=10)
    )
    assert {len(v) for v in series.values()} == {10}
    assert sum(n for _, n in series["completed"]) == 2
    assert sum(n for _, n in series["error"]) == 2
    assert sum(n for _, n in series["failover:timed_out"]) == 2


async def test_views_written_before_the_index_existed_are_indexed_on_open(tmp_path: Any) -> None:
    path = tmp_path / "old.sqlite3"
    store, uuids = await store_with(f"sqlite:///{tmp_path / 'new.sqlite3'}", 3)
    assert isinstance(store, SQLiteStore)
    views_rows = store._db.execute(
        "SELECT dispatch_uuid, application_id, view FROM views"
    ).fetchall()
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE views (dispatch_uuid TEXT PRIMARY KEY, application_id TEXT NOT NULL, "
        "view BLOB NOT NULL)"
    )
    old.executemany("INSERT INTO views VALUES (?, ?, ?)", views_rows)
    old.commit()
    ensure_console_schema(old)
    indexed = [u for (u,) in old.execute("SELECT dispatch_uuid FROM console_dispatches ORDER BY 1")]
    assert indexed == sorted(uuids)


async def test_applications_lists_each_once(store_url: str) -> None:
    store, _ = await store_with(store_url, 5)
    assert await read(store, queries.applications) == ["app-a", "app-b"]


async def test_a_dispatch_page_reads_its_view_and_history(store_url: str) -> None:
    store, uuids = await store_with(store_url, 1)
    view = await read(store, lambda db: queries.view(db, uuids[0]))
    assert view is not None and view["status"] == "completed"
    assert (
        next(r.type for r in await read(store, lambda db: queries.history(db, uuids[0])))
        == "WorkflowRequested"
    )
    assert await read(store, lambda db: queries.view(db, str(uuid.uuid4()))) is None


def test_times_are_compared_as_utc() -> None:
    assert datetime.fromisoformat(T0.isoformat()).tzinfo == UTC


def processor_webhooks(events: list[Any]) -> set[str]:
    """The webhook ids the real processor sends the deliverer for ``events``."""
    stores = Stores(dispatches={}, buckets={}, cursors={})
    sent: set[str] = set()
    for offset, event in enumerate(events):
        result = process(stores, 0, offset, event, Policy())
        sent |= {str(o.event_id) for o in result.outputs if isinstance(o, DeliverWebhook)}
    return sent


async def test_the_backlog_counts_every_pending_webhook_and_each_abandoned_one(
    store_url: str,
) -> None:
    store = opened(await open_store(store_url))
    completed, refused = uuid.uuid4(), uuid.uuid4()
    completed_events = failover_history(completed, "app-a")
    refused_events = rejected_at(refused, "app-b", T0)
    offset = await project(store, completed_events)
    await project(store, refused_events, offset)
    pending = (await store.view(str(completed)))["webhooks"]["pending"]  # type: ignore[index]
    final = next(
        str(e.webhook_id)
        for e in completed_events
        if isinstance(e, WebhookDelivered) and e.kind == "final"
    )
    # Status webhooks as well as the final report: exactly the processor's
    # webhooks, less the final report the history says was delivered.
    assert set(pending) == processor_webhooks(completed_events) - {final}
    refused_pending = (await store.view(str(refused)))["webhooks"]["pending"]  # type: ignore[index]
    assert set(refused_pending) == processor_webhooks(refused_events)
    figures = await read(store, queries.figures)
    assert figures.webhooks_pending == len(pending) + len(refused_pending)
    assert figures.webhooks_abandoned_total == 0

    # The refused dispatch's two webhooks abandoned, one of the other's delivered.
    outcomes: list[Any] = [
        WebhookAbandoned(
            dispatch_uuid=refused, webhook_id=uuid.UUID(w), kind="status", attempts=3, reason="x"
        )
        for w in refused_pending
    ]
    outcomes.append(
        WebhookDelivered(
            dispatch_uuid=completed,
            webhook_id=uuid.UUID(pending[0]),
            kind="status",
            attempts=1,
            http_status=200,
        )
    )
    await project(store, outcomes, 100)
    figures = await read(store, queries.figures)
    assert figures.webhooks_pending == len(pending) + len(refused_pending) - 3
    assert (figures.webhooks_abandoned_total, figures.webhooks_abandoned) == (2, 1)


async def test_an_index_from_before_the_backlog_column_gets_it_on_open(tmp_path: Any) -> None:
    path = tmp_path / "older.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE views (dispatch_uuid TEXT PRIMARY KEY, application_id TEXT NOT NULL, "
        "view BLOB NOT NULL);"
        "CREATE TABLE console_dispatches (dispatch_uuid TEXT PRIMARY KEY, "
        "application_id TEXT NOT NULL, status TEXT NOT NULL, requested_at TEXT NOT NULL, "
        "finished_at TEXT, failed_over INTEGER NOT NULL, webhooks_abandoned INTEGER NOT NULL, "
        "final_report_pending INTEGER NOT NULL, channels TEXT);"
    )
    old.close()
    store = opened(SQLiteStore(str(path)))
    dispatch = uuid.uuid4()
    await project(store, rejected_at(dispatch, "app-b", T0))
    assert (await read(store, queries.figures)).webhooks_pending > 0
