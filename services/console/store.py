"""Read-only access to the projection store for the console's threads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class StoreMissing(Exception):
    """The projector has not created its store yet."""


class ConsoleStore:
    """One read-only SQLite connection per thread (SQLite connections are not
    shared across threads, and reads run in Starlette's thread pool)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            if not self.path.exists():
                raise StoreMissing(str(self.path))
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            db.execute("PRAGMA query_only = 1")
            self._local.db = db
        return db

    def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``query`` in one consistent snapshot of the store."""
        db = self._connection()
        db.execute("BEGIN")
        try:
            return query(db)
        finally:
            db.execute("COMMIT")
