"""What the operator console asks of the projection store, in SQL.

Lists page by key (``requested_at``, ``dispatch_uuid``), newest first, never by
OFFSET and never with a total count: both cost time in proportion to the rows
skipped or counted, and a million dispatches is the case we design for. Every
filter combination reads one index in order and stops after a page.

The same SQL runs on SQLite and PostgreSQL (the index is
``projections/console_schema.py`` on one, ``console_pg_schema.py`` on the
other): placeholders are written ``?`` and a :class:`Reader` translates them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import orjson

from projections.store import HistoryRow
from projections.view import public

STATUSES = ("in_progress", "completed", "error")
CHANNELS = ("sms", "mms", "whatsapp", "viber", "messenger")
PAGE_SIZE = 50
# A search by uuid prefix looks at this many candidates at most.
SEARCH_CANDIDATES = 200


class Reader(Protocol):
    """One consistent snapshot of a projection store, read with ``?`` placeholders."""

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]: ...

    async def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]: ...


async def _one(db: Reader, sql: str, params: Sequence[Any] = ()) -> Any:
    found = await db.rows(sql, params)
    return found[0][0] if found else None


@dataclass(frozen=True)
class Filters:
    application_id: str | None = None
    status: str | None = None
    channel: str | None = None
    failed_over: bool = False
    abandoned: bool = False  # with a webhook abandoned and not delivered since
    since: str | None = None  # ISO 8601, inclusive
    until: str | None = None  # ISO 8601, exclusive
    search: str | None = None  # a dispatch or message uuid, or its start
    before: tuple[str, str] | None = None  # the last row of the previous page


@dataclass(frozen=True)
class Row:
    dispatch_uuid: str
    application_id: str
    status: str
    requested_at: str
    finished_at: str | None
    failed_over: bool
    webhooks_abandoned: int
    channels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    next_before: tuple[str, str] | None  # where the following page starts, if any


_COLUMNS = (
    "d.dispatch_uuid, d.application_id, d.status, d.requested_at, d.finished_at, "
    "d.failed_over, d.webhooks_abandoned, d.channels"
)


async def list_dispatches(db: Reader, filters: Filters, limit: int = PAGE_SIZE) -> Page:
    where: list[str] = []
    params: list[Any] = []
    if filters.channel:
        source = "console_channels c JOIN console_dispatches d USING (dispatch_uuid)"
        where.append("c.channel = ?")
        params.append(filters.channel)
        order_table = "c"
    else:
        source = "console_dispatches d"
        order_table = "d"
    if filters.search:
        candidates = await _search(db, filters.search)
        if not candidates:
            return Page(rows=[], next_before=None)
        where.append(f"d.dispatch_uuid IN ({','.join('?' * len(candidates))})")
        params.extend(candidates)
    if filters.application_id:
        where.append("d.application_id = ?")
        params.append(filters.application_id)
    if filters.status:
        where.append("d.status = ?")
        params.append(filters.status)
    if filters.failed_over:
        where.append("d.failed_over")
    if filters.abandoned:
        where.append("d.webhooks_abandoned > 0")
    if filters.since:
        where.append(f"{order_table}.requested_at >= ?")
        params.append(filters.since)
    if filters.until:
        where.append(f"{order_table}.requested_at < ?")
        params.append(filters.until)
    if filters.before:
        where.append(f"({order_table}.requested_at, {order_table}.dispatch_uuid) < (?, ?)")
        params.extend(filters.before)
    sql = (
        f"SELECT {_COLUMNS} FROM {source}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {order_table}.requested_at DESC, {order_table}.dispatch_uuid DESC LIMIT ?"
    )
    params.append(limit + 1)
    found = await db.rows(sql, params)
    rows = [_row(r) for r in found[:limit]]
    more = len(found) > limit
    return Page(
        rows=rows, next_before=(rows[-1].requested_at, rows[-1].dispatch_uuid) if more else None
    )


def _row(r: Sequence[Any]) -> Row:
    return Row(
        dispatch_uuid=r[0],
        application_id=r[1],
        status=r[2],
        requested_at=r[3],
        finished_at=r[4],
        failed_over=bool(r[5]),
        webhooks_abandoned=r[6],
        channels=(r[7] or "").split(",") if r[7] else [],
    )


async def _search(db: Reader, text: str) -> list[str]:
    """Dispatches whose uuid, or one of whose message uuids, starts with ``text``."""
    prefix = text.strip().lower()
    upper = prefix + "\uffff"
    # Byte order on both engines (the console's own columns are so already).
    message_uuid = 'message_uuid COLLATE "C"' if db.dialect == "postgresql" else "message_uuid"
    found = [
        r[0]
        for r in await db.rows(
            "SELECT dispatch_uuid FROM console_dispatches "
            "WHERE dispatch_uuid >= ? AND dispatch_uuid < ? LIMIT ?",
            (prefix, upper, SEARCH_CANDIDATES),
        )
    ]
    found += [
        r[0]
        for r in await db.rows(
            f"SELECT dispatch_uuid FROM messages WHERE {message_uuid} >= ? "
            f"AND {message_uuid} < ? LIMIT ?",
            (prefix, upper, SEARCH_CANDIDATES),
        )
    ]
    return list(dict.fromkeys(found))


async def applications(db: Reader, limit: int = 200) -> list[str]:
    """Application ids with dispatches, for the filter's choices (a skip scan
    of the application index: one probe per application, not per dispatch)."""
    found: list[str] = []
    current = await _one(db, "SELECT min(application_id) FROM console_dispatches")
    while current is not None and len(found) < limit:
        found.append(current)
        current = await _one(
            db,
            "SELECT min(application_id) FROM console_dispatches WHERE application_id > ?",
            (current,),
        )
    return found


# -- one dispatch ----------------------------------------------------------------


async def view(db: Reader, dispatch_uuid: str) -> dict[str, Any] | None:
    blob = await _one(db, "SELECT view FROM views WHERE dispatch_uuid = ?", (dispatch_uuid,))
    return None if blob is None else public(orjson.loads(blob))


async def history(db: Reader, dispatch_uuid: str) -> list[HistoryRow]:
    rows = await db.rows(
        'SELECT partition, "offset", dispatch_uuid, type, occurred_at, event FROM history '
        'WHERE dispatch_uuid = ? ORDER BY partition, "offset"',
        (dispatch_uuid,),
    )
    return [HistoryRow(*row) for row in rows]


# -- figures for the overview and /metrics -----------------------------------------


@dataclass(frozen=True)
class Figures:
    in_flight: int
    finished: dict[str, int]  # status → dispatches ever finished so
    failovers: dict[str, int]  # reason → failovers ever
    webhooks_abandoned: int  # dispatches with a webhook abandoned and not redelivered
    final_reports_pending: int  # finished dispatches whose final report is not out yet
    # The webhook backlog: every webhook (status and final) sent to the
    # deliverer and neither delivered nor abandoned yet, and those abandoned.
    webhooks_pending: int = 0
    webhooks_abandoned_total: int = 0


async def figures(db: Reader) -> Figures:
    failovers = await db.rows("SELECT reason, count(*) FROM console_failovers GROUP BY reason")
    return Figures(
        in_flight=await _count(
            db, "SELECT count(*) FROM console_dispatches WHERE status = 'in_progress'"
        ),
        finished={
            status: await _count(
                db, "SELECT count(*) FROM console_dispatches WHERE status = ?", (status,)
            )
            for status in ("completed", "error")
        },
        failovers={reason: int(count) for reason, count in failovers},
        webhooks_abandoned=await _count(
            db, "SELECT count(*) FROM console_dispatches WHERE webhooks_abandoned > 0"
        ),
        final_reports_pending=await _count(
            db, "SELECT count(*) FROM console_dispatches WHERE final_report_pending"
        ),
        webhooks_pending=await _count(
            db,
            "SELECT coalesce(sum(webhooks_pending), 0) FROM console_dispatches "
            "WHERE webhooks_pending > 0",
        ),
        webhooks_abandoned_total=await _count(
            db,
            "SELECT coalesce(sum(webhooks_abandoned), 0) FROM console_dispatches "
            "WHERE webhooks_abandoned > 0",
        ),
    )


async def per_minute(
    db: Reader, now: datetime, minutes: int = 30
) -> dict[str, list[tuple[str, int]]]:
    """Finished dispatches by status and failovers by reason, per minute, over
    the last ``minutes`` (oldest first, empty minutes included)."""
    start = (now - timedelta(minutes=minutes - 1)).astimezone(UTC).replace(second=0, microsecond=0)
    labels = [(start + timedelta(minutes=i)).strftime("%H:%M") for i in range(minutes)]
    since = start.isoformat()
    series: dict[str, dict[str, int]] = {}
    for minute, status, count in await db.rows(
        "SELECT substr(finished_at, 12, 5), status, count(*) FROM console_dispatches "
        "WHERE finished_at >= ? GROUP BY 1, 2",
        (since,),
    ):
        series.setdefault(status, {})[minute] = int(count)
    for minute, reason, count in await db.rows(
        "SELECT substr(at, 12, 5), reason, count(*) FROM console_failovers "
        "WHERE at >= ? GROUP BY 1, 2",
        (since,),
    ):
        series.setdefault(f"failover:{reason}", {})[minute] = int(count)
    return {name: [(m, by_minute.get(m, 0)) for m in labels] for name, by_minute in series.items()}


async def _count(db: Reader, sql: str, params: Sequence[Any] = ()) -> int:
    return int(await _one(db, sql, params) or 0)
