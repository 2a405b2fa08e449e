"""The projection store: SQLite, written only by the projector.

One transaction per batch holds the new views, the history rows and the next
offset of every partition, so the store is exactly as far as it says it is: a
restarted projector resumes from the offsets in the store (no consumer group),
and never applies an event twice or skips one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from projections.console_schema import ensure_console_schema
from projections.view import View

SCHEMA = """
CREATE TABLE IF NOT EXISTS views (
    dispatch_uuid TEXT PRIMARY KEY,
    application_id TEXT NOT NULL,
    view BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    partition INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    dispatch_uuid TEXT NOT NULL,
    type TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (partition, offset)
);
CREATE INDEX IF NOT EXISTS history_by_dispatch ON history (dispatch_uuid, partition, offset);
CREATE TABLE IF NOT EXISTS messages (
    message_uuid TEXT PRIMARY KEY,
    dispatch_uuid TEXT NOT NULL,
    step INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    partition INTEGER PRIMARY KEY,
    next_offset INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class HistoryRow:
    partition: int
    offset: int
    dispatch_uuid: str
    type: str
    occurred_at: str
    event: bytes  # the event exactly as it is on the log


@dataclass
class Batch:
    """What one batch of records changes; written in one transaction."""

    views: dict[str, View]
    history: list[HistoryRow]
    messages: dict[str, tuple[str, int]]
    positions: dict[int, int]


class ProjectionStore:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        ensure_console_schema(self._db)  # the console's index: projections/console_schema.py

    def close(self) -> None:
        self._db.close()

    # -- writes ---------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT INTO views (dispatch_uuid, application_id, view) VALUES (?, ?, ?) "
                "ON CONFLICT (dispatch_uuid) DO UPDATE SET view = excluded.view",
                [(k, v["application_id"], orjson.dumps(v)) for k, v in batch.views.items()],
            )
            db.executemany(
                "INSERT OR IGNORE INTO history VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (h.partition, h.offset, h.dispatch_uuid, h.type, h.occurred_at, h.event)
                    for h in batch.history
                ],
            )
            db.executemany(
                "INSERT OR IGNORE INTO messages VALUES (?, ?, ?)",
                [(m, d, s) for m, (d, s) in batch.messages.items()],
            )
            db.executemany(
                "INSERT INTO positions VALUES (?, ?) "
                "ON CONFLICT (partition) DO UPDATE SET next_offset = excluded.next_offset",
                list(batch.positions.items()),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- reads ----------------------------------------------------------------
    @contextmanager
    def snapshot(self) -> Iterator[ProjectionStore]:
        """Reads inside see one consistent state, even while the projector writes."""
        self._db.execute("BEGIN")
        try:
            yield self
        finally:
            self._db.execute("COMMIT")

    def positions(self) -> dict[int, int]:
        return dict(self._db.execute("SELECT partition, next_offset FROM positions").fetchall())

    def view(self, dispatch_uuid: str) -> View | None:
        row = self._db.execute(
            "SELECT view FROM views WHERE dispatch_uuid = ?", (dispatch_uuid,)
        ).fetchone()
        return None if row is None else _loads(row[0])

    def views(self, dispatch_uuids: Iterable[str]) -> dict[str, View]:
        found: dict[str, View] = {}
        for uuid in dispatch_uuids:
            view = self.view(uuid)
            if view is not None:
                found[uuid] = view
        return found

    def all_views(self) -> Iterator[tuple[str, View]]:
        for uuid, blob in self._db.execute("SELECT dispatch_uuid, view FROM views ORDER BY 1"):
            yield uuid, _loads(blob)

    def history(self, dispatch_uuid: str) -> list[HistoryRow]:
        rows = self._db.execute(
            "SELECT partition, offset, dispatch_uuid, type, occurred_at, event FROM history "
            "WHERE dispatch_uuid = ? ORDER BY partition, offset",
            (dispatch_uuid,),
        ).fetchall()
        return [HistoryRow(*row) for row in rows]

    def history_digest(self) -> Iterator[tuple[str, int, int, str]]:
        yield from self._db.execute(
            "SELECT dispatch_uuid, partition, offset, type FROM history ORDER BY 2, 3"
        )

    def message(self, message_uuid: str) -> tuple[str, int] | None:
        row = self._db.execute(
            "SELECT dispatch_uuid, step FROM messages WHERE message_uuid = ?", (message_uuid,)
        ).fetchone()
        return None if row is None else (row[0], row[1])


def _loads(blob: bytes) -> Any:
    return orjson.loads(blob)
