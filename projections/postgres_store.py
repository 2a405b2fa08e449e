"""The shared projection store: one PostgreSQL database (asyncpg).

Any number of projectors write it, each the partitions its consumer group gave
it; any number of read APIs read it. A batch's offsets are moved on with a
conditional UPDATE (or an INSERT for a partition never written) before its
rows: the row lock makes a second writer of the same partition wait, and then
find the offset moved and write nothing (READ COMMITTED re-checks the
condition against the committed row).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from projections import schema
from projections.console_pg_schema import ensure_console_schema
from projections.store import Batch, HistoryRow, Snapshot, StalePositions, redacted
from projections.view import View

# Every statement has a deadline: a database that stopped answering fails the
# batch (the projector stops and is restarted) instead of hanging it.
COMMAND_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
# Any constant, the same in every projector: serialises concurrent migrations.
_MIGRATION_LOCK = 0x6469_7370


class PostgresStore:
    shared = True

    def __init__(self, url: str, pool: asyncpg.Pool) -> None:
        self._url = url
        self._pool = pool

    @classmethod
    async def open(cls, url: str, *, max_connections: int = 5) -> PostgresStore:
        pool = await asyncpg.create_pool(
            url,
            min_size=1,
            max_size=max_connections,
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=COMMAND_TIMEOUT_S,
        )
        try:
            async with pool.acquire() as connection:
                await migrate(connection)
        except BaseException:
            await pool.close()
            raise
        return cls(url, pool)

    @property
    def description(self) -> str:
        return redacted(self._url)

    async def close(self) -> None:
        await self._pool.close()

    # -- writes ---------------------------------------------------------------
    async def write(self, batch: Batch, expected: dict[int, int | None]) -> None:
        async with self._pool.acquire() as db, db.transaction():
            stale = await _advance_positions(db, batch.positions, expected)
            if stale:
                # Raising inside the transaction rolls it back.
                raise StalePositions(stale)
            if batch.views:
                await db.execute(
                    "INSERT INTO views (dispatch_uuid, application_id, view) "
                    "SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[]) "
                    "ON CONFLICT (dispatch_uuid) DO UPDATE SET view = excluded.view",
                    list(batch.views),
                    [v["application_id"] for v in batch.views.values()],
                    [orjson.dumps(v) for v in batch.views.values()],
                )
            if batch.history:
                h = batch.history
                await db.execute(
                    "INSERT INTO history SELECT * FROM unnest("
                    "$1::int[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bytea[]) "
                    "ON CONFLICT DO NOTHING",
                    [r.partition for r in h],
                    [r.offset for r in h],
                    [r.dispatch_uuid for r in h],
                    [r.type for r in h],
                    [r.occurred_at for r in h],
                    [r.event for r in h],
                )
            if batch.messages:
                await db.execute(
                    "INSERT INTO messages SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) "
                    "ON CONFLICT DO NOTHING",
                    list(batch.messages),
                    [d for d, _ in batch.messages.values()],
                    [s for _, s in batch.messages.values()],
                )

    # -- reads ----------------------------------------------------------------
    async def positions(self) -> dict[int, int]:
        async with self._pool.acquire() as db:
            return await _positions(db)

    async def view(self, dispatch_uuid: str) -> View | None:
        async with self._pool.acquire() as db:
            blob = await db.fetchval(
                "SELECT view FROM views WHERE dispatch_uuid = $1", dispatch_uuid
            )
        return None if blob is None else orjson.loads(blob)

    async def views(self, dispatch_uuids: Iterable[str]) -> dict[str, View]:
        wanted = list(dispatch_uuids)
        if not wanted:
            return {}
        async with self._pool.acquire() as db:
            rows = await db.fetch(
                "SELECT dispatch_uuid, view FROM views WHERE dispatch_uuid = ANY($1::text[])",
                wanted,
            )
        return {row[0]: orjson.loads(row[1]) for row in rows}

    async def history(self, dispatch_uuid: str) -> list[HistoryRow]:
        async with self._pool.acquire() as db:
            rows = await db.fetch(
                'SELECT partition, "offset", dispatch_uuid, type, occurred_at, event '
                'FROM history WHERE dispatch_uuid = $1 ORDER BY partition, "offset"',
                dispatch_uuid,
            )
        return [HistoryRow(*row) for row in rows]

    async def message(self, message_uuid: str) -> tuple[str, int] | None:
        async with self._pool.acquire() as db:
            row = await db.fetchrow(
                "SELECT dispatch_uuid, step FROM messages WHERE message_uuid = $1", message_uuid
            )
        return None if row is None else (row[0], row[1])

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Snapshot]:
        async with (
            self._pool.acquire() as db,
            db.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield _PostgresSnapshot(db)


class _PostgresSnapshot:
    def __init__(self, db: Any) -> None:
        self._db = db

    async def positions(self) -> dict[int, int]:
        return await _positions(self._db)

    async def all_views(self) -> AsyncIterator[tuple[str, View]]:
        # A cursor: the views are streamed, never all in memory at once.
        async for row in self._db.cursor(
            'SELECT dispatch_uuid, view FROM views ORDER BY dispatch_uuid COLLATE "C"'
        ):
            yield row[0], orjson.loads(row[1])

    async def history_digest(self) -> AsyncIterator[tuple[str, int, int, str]]:
        async for row in self._db.cursor(
            'SELECT dispatch_uuid, partition, "offset", type FROM history ORDER BY 2, 3'
        ):
            yield row[0], row[1], row[2], row[3]


async def migrate(db: Any) -> None:
    """Apply the missing migrations in one transaction; the advisory lock makes
    projectors that start together migrate one after the other."""
    async with db.transaction():
        await db.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await db.execute(schema.CREATE_MIGRATIONS_TABLE)
        applied = {row[0] for row in await db.fetch("SELECT version FROM schema_migrations")}
        for version in schema.pending(applied):
            for statement in schema.statements("postgresql", version):
                await db.execute(statement)
            await db.execute(
                "INSERT INTO schema_migrations VALUES ($1, $2)",
                version,
                datetime.now(UTC).isoformat(),
            )
        await ensure_console_schema(db)  # the console's index: projections/console_pg_schema.py


async def _positions(db: Any) -> dict[int, int]:
    rows = await db.fetch("SELECT partition, next_offset FROM positions")
    return {row[0]: row[1] for row in rows}


async def _advance_positions(
    db: Any, positions: dict[int, int], expected: dict[int, int | None]
) -> list[int]:
    stale = []
    # Always in partition order, so two writers never lock rows in opposite orders.
    for partition, next_offset in sorted(positions.items()):
        before = expected.get(partition)
        if before is None:
            status = await db.execute(
                "INSERT INTO positions VALUES ($1, $2) ON CONFLICT DO NOTHING",
                partition,
                next_offset,
            )
        else:
            status = await db.execute(
                "UPDATE positions SET next_offset = $2 WHERE partition = $1 AND next_offset = $3",
                partition,
                next_offset,
                before,
            )
        if not status.endswith(" 1"):
            stale.append(partition)
    return stale
