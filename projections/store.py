"""The projection store: what the projector writes and the read API reads.

Two engines behind one interface, chosen by a URL: SQLite (the embedded
default, one file per projector) and PostgreSQL (one database shared by any
number of projectors and the read APIs in front of it). Both use the same
schema and migrations (:mod:`projections.schema`).

One transaction per batch holds the new views, the history rows and the next
offset of every partition the batch read, so the store is exactly as far as it
says it is. A write names the offsets it expects the store to be at; if another
projector moved a partition on meanwhile (it was given the partition in a
rebalance), the whole batch is refused with :class:`StalePositions` and the
writer re-reads the store's offsets: no batch is applied twice or lost.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from projections.view import View

DEFAULT_SQLITE_PATH = ".local/projections.sqlite3"


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
    positions: dict[int, int]  # partition -> next offset to read


class StalePositions(Exception):
    """The store is not where the writer expected: another projector wrote
    these partitions since. Nothing of the batch was written."""

    def __init__(self, partitions: list[int]) -> None:
        super().__init__(f"partitions {partitions} moved on in the store")
        self.partitions = partitions


class Snapshot(Protocol):
    """One consistent state of a store, however long it is read."""

    async def positions(self) -> dict[int, int]: ...

    def all_views(self) -> AsyncIterator[tuple[str, View]]:
        """Every view, ordered by dispatch_uuid."""
        ...

    def history_digest(self) -> AsyncIterator[tuple[str, int, int, str]]:
        """(dispatch_uuid, partition, offset, type) of every row, by partition and offset."""
        ...


class ProjectionStore(Protocol):
    @property
    def description(self) -> str:
        """Where the store is, for logs (never a password)."""
        ...

    @property
    def shared(self) -> bool:
        """Several projectors may write it (then they split the partitions)."""
        ...

    async def write(self, batch: Batch, expected: dict[int, int | None]) -> None:
        """Apply ``batch`` if every partition in it is at ``expected`` (``None``:
        never written); otherwise raise :class:`StalePositions`."""
        ...

    async def positions(self) -> dict[int, int]: ...

    async def view(self, dispatch_uuid: str) -> View | None: ...

    async def views(self, dispatch_uuids: Iterable[str]) -> dict[str, View]: ...

    async def history(self, dispatch_uuid: str) -> list[HistoryRow]: ...

    async def message(self, message_uuid: str) -> tuple[str, int] | None: ...

    def snapshot(self) -> AbstractAsyncContextManager[Snapshot]: ...

    async def close(self) -> None: ...


def store_url_from_env(env: dict[str, str] | None = None) -> str:
    """``PROJECTOR_STORE_URL``, else the SQLite file at ``PROJECTOR_DB``."""
    env = dict(os.environ) if env is None else env
    url = env.get("PROJECTOR_STORE_URL", "").strip()
    if url:
        return url
    return env.get("PROJECTOR_DB", DEFAULT_SQLITE_PATH)


def is_postgresql(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def sqlite_path(url: str) -> str:
    """``sqlite:///relative``, ``sqlite:////absolute``, or a plain file path."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    if url.startswith("sqlite:"):
        raise ValueError(f"a SQLite store URL is sqlite:///<path>, not {url!r}")
    if "://" in url:
        raise ValueError(f"unknown projection store {url!r}: use sqlite:/// or postgresql://")
    return url


def redacted(url: str) -> str:
    """The URL without its password."""
    if not is_postgresql(url):
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"


def default_group(url: str, prefix: str = "") -> str:
    """The consumer group of the projectors that share one store.

    Derived from where the store is (host, port, database), so projectors
    writing two different databases never split one topic between them.
    """
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or 5432}{parts.path}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:10]
    return f"{prefix}dispatch-projector-{digest}"


async def open_store(url: str) -> ProjectionStore:
    """Open (and migrate) the store at ``url``."""
    if is_postgresql(url):
        from projections.postgres_store import PostgresStore

        return await PostgresStore.open(url)
    from projections.sqlite_store import SQLiteStore

    path = sqlite_path(url)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(path)
