"""The projection store's contract, on SQLite and on a real PostgreSQL: a batch
is all or nothing, and a writer that is behind the store (it lost the
partition to another projector) writes nothing at all."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import httpx
import pytest

from projections import schema
from projections.api import create_api
from projections.store import Batch, HistoryRow, StalePositions, open_store


def _batch(dispatch: str, status: str, partition: int, offset: int) -> Batch:
    return Batch(
        views={dispatch: {"dispatch_uuid": dispatch, "application_id": "app-1", "status": status}},
        history=[HistoryRow(partition, offset, dispatch, "WorkflowRequested", "t", b"{}")],
        messages={f"m-{offset}": (dispatch, 0)},
        positions={partition: offset + 1},
    )


async def test_a_writer_behind_the_store_writes_nothing(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        await store.write(_batch("d-1", "in_progress", 0, 0), {0: None})
        # A second projector that also started partition 0 from the beginning.
        with pytest.raises(StalePositions) as stale:
            await store.write(_batch("d-1", "error", 0, 0), {0: None})
        assert stale.value.partitions == [0]
        # One that read partition 0 from offset 0 while the store is at 1.
        with pytest.raises(StalePositions):
            await store.write(_batch("d-2", "error", 0, 1), {0: 0})
        assert (await store.view("d-1"))["status"] == "in_progress"  # type: ignore[index]
        assert await store.view("d-2") is None
        assert await store.message("m-1") is None
        assert await store.positions() == {0: 1}

        await store.write(_batch("d-2", "completed", 0, 1), {0: 1})
        assert await store.positions() == {0: 2}
        assert [r.offset for r in await store.history("d-2")] == [1]
        assert set(await store.views(["d-1", "d-2", "d-3"])) == {"d-1", "d-2"}
    finally:
        await store.close()


async def test_of_two_racing_writers_exactly_one_wins(postgres_url: str) -> None:
    one, other = await open_store(postgres_url), await open_store(postgres_url)
    try:
        results = await asyncio.gather(
            one.write(_batch("d-1", "completed", 3, 0), {3: None}),
            other.write(_batch("d-1", "error", 3, 0), {3: None}),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["NoneType", "StalePositions"]
        winner = "completed" if results[0] is None else "error"
        assert (await one.view("d-1"))["status"] == winner  # type: ignore[index]
        assert len(await one.history("d-1")) == 1
    finally:
        await one.close()
        await other.close()


async def test_reopening_keeps_the_rows_and_the_offsets(store_url: str) -> None:
    store = await open_store(store_url)
    await store.write(_batch("d-1", "completed", 0, 0), {0: None})
    await store.close()
    # Opening runs the migrations again: none is applied twice, nothing is lost.
    store = await open_store(store_url)
    try:
        assert (await store.view("d-1"))["status"] == "completed"  # type: ignore[index]
        assert await store.positions() == {0: 1}
        await store.write(_batch("d-2", "completed", 0, 1), {0: 1})
    finally:
        await store.close()


async def test_a_store_from_before_numbered_migrations_is_adopted(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as old:
        for statement in schema.statements("sqlite", 1):
            old.execute(statement.replace('"offset"', "offset"))
        old.execute("INSERT INTO positions VALUES (0, 7)")
    store = await open_store(f"sqlite:///{path}")
    try:
        assert await store.positions() == {0: 7}
    finally:
        await store.close()
    with sqlite3.connect(path) as migrated:
        versions = [row[0] for row in migrated.execute("SELECT version FROM schema_migrations")]
    assert versions == [schema.latest()]


async def test_reads_answer_503_while_the_database_is_gone(postgres_url: str) -> None:
    store = await open_store(postgres_url)
    server = postgres_url.rsplit("/", 1)[0] + "/postgres"
    admin = await asyncpg.connect(server)
    try:
        name = postgres_url.rsplit("/", 1)[1]
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    api = create_api(store, asyncio.Event())
    transport = httpx.ASGITransport(app=api)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://projector") as client:
            for path in ("/internal/dispatches/d-1", "/internal/messages/m-1"):
                answer = await client.get(path)
                assert answer.status_code == 503, answer.text
                assert answer.json() == {"error": "projection store unavailable"}
    finally:
        await store.close()
