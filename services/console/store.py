"""Read-only access to the projection store for the console, on SQLite or
PostgreSQL: each read is one consistent snapshot, given to a query of
``projections.console_queries`` as a :class:`~projections.console_queries.Reader`."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import asyncpg

from projections.console_queries import Reader
from projections.store import is_postgresql, redacted, sqlite_path

T = TypeVar("T")
Query = Callable[[Reader], Awaitable[T]]

# Every statement has a deadline: a database that stopped answering is a 503
# page, not a request that hangs.
COMMAND_TIMEOUT_S = 10.0


class StoreMissing(Exception):
    """The projector has not created its store yet (or it cannot be reached)."""


class ConsoleStore(Protocol):
    description: str

    async def read(self, query: Query[T]) -> T:
        """Run ``query`` in one consistent snapshot of the store."""
        ...

    async def close(self) -> None: ...


def open_console_store(url: str) -> ConsoleStore:
    if is_postgresql(url):
        return PostgresConsoleStore(url)
    return SQLiteConsoleStore(sqlite_path(url))


class _SQLiteReader:
    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        # In a worker thread: a count over a large index must not stall the
        # pages other operators are loading.
        return await asyncio.to_thread(lambda: self._db.execute(sql, params).fetchall())


class SQLiteConsoleStore:
    """Read-only connections (``mode=ro``, ``query_only``), one per read in
    flight, kept for the next: WAL lets them read while the projector writes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.description = f"sqlite:///{self.path}"
        self._idle: list[sqlite3.Connection] = []

    def _connection(self) -> sqlite3.Connection:
        if self._idle:
            return self._idle.pop()
        if not self.path.exists():
            raise StoreMissing(str(self.path))
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        db.execute("PRAGMA query_only = 1")
        return db

    async def read(self, query: Query[T]) -> T:
        db = self._connection()
        try:
            db.execute("BEGIN")
            try:
                return await query(_SQLiteReader(db))
            finally:
                db.execute("COMMIT")
        finally:
            self._idle.append(db)

    async def close(self) -> None:
        for db in self._idle:
            db.close()
        self._idle.clear()


_PLACEHOLDER = re.compile(r"\?")


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...`` (the console's SQL
    has no ``?`` in a literal)."""
    count = iter(range(1, 1_000_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)


class _PostgresReader:
    dialect: Literal["postgresql"] = "postgresql"

    def __init__(self, db: Any) -> None:
        self._db = db

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        found: list[Sequence[Any]] = await self._db.fetch(numbered(sql), *params)
        return found


class PostgresConsoleStore:
    """A small pool on the shared store, opened at the first read (the
    console may start before the database answers)."""

    def __init__(self, url: str, *, max_connections: int = 4) -> None:
        self._url = url
        self.description = redacted(url)
        self._max = max_connections
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self._url,
                        min_size=1,
                        max_size=self._max,
                        timeout=COMMAND_TIMEOUT_S,
                        command_timeout=COMMAND_TIMEOUT_S,
                    )
                except (OSError, asyncpg.PostgresError) as exc:
                    raise StoreMissing(f"{self.description}: {exc}") from exc
            return self._pool

    async def read(self, query: Query[T]) -> T:
        pool = await self._get_pool()
        try:
            async with (
                pool.acquire() as db,
                db.transaction(isolation="repeatable_read", readonly=True),
            ):
                return await query(_PostgresReader(db))
        except asyncpg.UndefinedTableError as exc:
            raise StoreMissing(f"{self.description}: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
