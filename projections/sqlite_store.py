"""The embedded projection store: one SQLite file, written by one projector.

Calls are synchronous under an async interface: each is a local read or one
short transaction, cheaper than handing it to a thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import orjson

from projections import schema
from projections.console_schema import ensure_console_schema
from projections.store import Batch, HistoryRow, Snapshot, StalePositions
from projections.view import View

# SQLite limits the number of ? in one statement; stay well below it.
_IN_CHUNK = 500


class SQLiteStore:
    shared = False

    def __init__(self, path: str) -> None:
        self.path = path
        self._db = _connect(path)
        migrate(self._db)
        ensure_console_schema(self._db)  # the console's index: projections/console_schema.py

    @property
    def description(self) -> str:
        return f"sqlite:///{self.path}"

    async def close(self) -> None:
        self._db.close()

    # -- writes ---------------------------------------------------------------
    async def write(self, batch: Batch, expected: dict[int, int | None]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            stale = _advance_positions(db, batch.positions, expected)
            if stale:
                raise StalePositions(stale)
            db.executemany(
                "INSERT INTO views (dispatch_uuid, application_id, view) VALUES (?, ?, ?) "
                "ON CONFLICT (dispatch_uuid) DO UPDATE SET view = excluded.view",
                [(k, v["application_id"], orjson.dumps(v)) for k, v in batch.views.items()],
            )
            db.executemany(
                "INSERT INTO history VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    (h.partition, h.offset, h.dispatch_uuid, h.type, h.occurred_at, h.event)
                    for h in batch.history
                ],
            )
            db.executemany(
                "INSERT INTO messages VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [(m, d, s) for m, (d, s) in batch.messages.items()],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- reads ----------------------------------------------------------------
    async def positions(self) -> dict[int, int]:
        return _positions(self._db)

    async def view(self, dispatch_uuid: str) -> View | None:
        row = self._db.execute(
            "SELECT view FROM views WHERE dispatch_uuid = ?", (dispatch_uuid,)
        ).fetchone()
        return None if row is None else orjson.loads(row[0])

    async def views(self, dispatch_uuids: Iterable[str]) -> dict[str, View]:
        wanted = list(dispatch_uuids)
        found: dict[str, View] = {}
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT dispatch_uuid, view FROM views WHERE dispatch_uuid IN ({marks})", chunk
            )
            found.update((uuid, orjson.loads(blob)) for uuid, blob in rows)
        return found

    async def history(self, dispatch_uuid: str) -> list[HistoryRow]:
        rows = self._db.execute(
            'SELECT partition, "offset", dispatch_uuid, type, occurred_at, event FROM history '
            'WHERE dispatch_uuid = ? ORDER BY partition, "offset"',
            (dispatch_uuid,),
        ).fetchall()
        return [HistoryRow(*row) for row in rows]

    async def message(self, message_uuid: str) -> tuple[str, int] | None:
        row = self._db.execute(
            "SELECT dispatch_uuid, step FROM messages WHERE message_uuid = ?", (message_uuid,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Snapshot]:
        # Its own connection: a read transaction held open for a long compare
        # must not take the writer's connection with it.
        reader = _connect(self.path)
        reader.execute("BEGIN")
        try:
            yield _SQLiteSnapshot(reader)
        finally:
            reader.execute("COMMIT")
            reader.close()


class _SQLiteSnapshot:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    async def positions(self) -> dict[int, int]:
        return _positions(self._db)

    async def all_views(self) -> AsyncIterator[tuple[str, View]]:
        for uuid, blob in self._db.execute("SELECT dispatch_uuid, view FROM views ORDER BY 1"):
            yield uuid, orjson.loads(blob)

    async def history_digest(self) -> AsyncIterator[tuple[str, int, int, str]]:
        for row in self._db.execute(
            'SELECT dispatch_uuid, partition, "offset", type FROM history ORDER BY 2, 3'
        ):
            yield row


def _connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=10000")
    return db


def migrate(db: sqlite3.Connection) -> None:
    """Apply the missing migrations in one transaction (IMMEDIATE: two
    processes opening one file at once migrate one after the other)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(schema.CREATE_MIGRATIONS_TABLE)
        applied = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
        for version in schema.pending(applied):
            for statement in schema.statements("sqlite", version):
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_migrations VALUES (?, ?)",
                (version, datetime.now(UTC).isoformat()),
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _positions(db: sqlite3.Connection) -> dict[int, int]:
    return dict(db.execute("SELECT partition, next_offset FROM positions").fetchall())


def _advance_positions(
    db: sqlite3.Connection, positions: dict[int, int], expected: dict[int, int | None]
) -> list[int]:
    """Move each partition on from where the writer expects it; the partitions
    that were elsewhere (nothing is committed then)."""
    stale = []
    for partition, next_offset in sorted(positions.items()):
        before = expected.get(partition)
        if before is None:
            cursor = db.execute(
                "INSERT INTO positions VALUES (?, ?) ON CONFLICT DO NOTHING",
                (partition, next_offset),
            )
        else:
            cursor = db.execute(
                "UPDATE positions SET next_offset = ? WHERE partition = ? AND next_offset = ?",
                (next_offset, partition, before),
            )
        if cursor.rowcount != 1:
            stale.append(partition)
    return stale
