"""The projection schema, one definition for SQLite and PostgreSQL.

Migrations are numbered and only ever appended: a store records the versions it
has applied in ``schema_migrations`` and applies the missing ones, in order, in
one transaction, on open. The statements are written once; the few type names
the two engines spell differently are placeholders (``{bytes}``, ``{bigint}``).
``"offset"`` is quoted because it is a reserved word in PostgreSQL.
"""

from __future__ import annotations

from typing import Literal

Dialect = Literal["sqlite", "postgresql"]

TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {"bytes": "BLOB", "bigint": "INTEGER"},
    "postgresql": {"bytes": "BYTEA", "bigint": "BIGINT"},
}

CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY,"
    " applied_at TEXT NOT NULL)"
)

# (version, statements). Version 1 is the schema stores had before migrations
# were numbered, hence IF NOT EXISTS: an older SQLite store adopts it as is.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS views (
                dispatch_uuid TEXT PRIMARY KEY,
                application_id TEXT NOT NULL,
                view {bytes} NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS history (
                partition INTEGER NOT NULL,
                "offset" {bigint} NOT NULL,
                dispatch_uuid TEXT NOT NULL,
                type TEXT NOT NULL,
                occurred_at TEXT NOT NULL,
                event {bytes} NOT NULL,
                PRIMARY KEY (partition, "offset")
            )""",
            "CREATE INDEX IF NOT EXISTS history_by_dispatch"
            ' ON history (dispatch_uuid, partition, "offset")',
            """CREATE TABLE IF NOT EXISTS messages (
                message_uuid TEXT PRIMARY KEY,
                dispatch_uuid TEXT NOT NULL,
                step INTEGER NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS positions (
                partition INTEGER PRIMARY KEY,
                next_offset {bigint} NOT NULL
            )""",
        ],
    ),
]


def statements(dialect: Dialect, version: int) -> list[str]:
    """The statements of one migration, in ``dialect``."""
    for number, body in MIGRATIONS:
        if number == version:
            return [statement.format(**TYPES[dialect]) for statement in body]
    raise KeyError(version)


def pending(applied: set[int]) -> list[int]:
    return [number for number, _ in MIGRATIONS if number not in applied]


def latest() -> int:
    return MIGRATIONS[-1][0]
