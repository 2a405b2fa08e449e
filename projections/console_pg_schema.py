"""The operator console's index in a PostgreSQL store: the same three tables
as SQLite's (``projections/console_schema.py``), kept by one trigger function
on ``views`` in the projector's own transaction.

The text columns the console sorts and compares by are ``COLLATE "C"``: byte
order, as in SQLite, so keyset paging and uuid-prefix search read an index in
order whatever the database's locale. Created (or replaced) by every projector
that opens the store, under the migrations' advisory lock.
"""

from __future__ import annotations

from typing import Any

_TABLES = [
    """CREATE TABLE IF NOT EXISTS console_dispatches (
        dispatch_uuid TEXT COLLATE "C" PRIMARY KEY,
        application_id TEXT COLLATE "C" NOT NULL,
        status TEXT NOT NULL,
        requested_at TEXT COLLATE "C" NOT NULL,
        finished_at TEXT COLLATE "C",
        failed_over BOOLEAN NOT NULL,
        webhooks_abandoned INTEGER NOT NULL,
        final_report_pending BOOLEAN NOT NULL,
        channels TEXT,
        webhooks_pending INTEGER NOT NULL DEFAULT 0
    )""",
    "CREATE INDEX IF NOT EXISTS console_by_time"
    " ON console_dispatches (requested_at, dispatch_uuid)",
    "CREATE INDEX IF NOT EXISTS console_by_status"
    " ON console_dispatches (status, requested_at, dispatch_uuid)",
    "CREATE INDEX IF NOT EXISTS console_by_application"
    " ON console_dispatches (application_id, requested_at, dispatch_uuid)",
    "CREATE INDEX IF NOT EXISTS console_by_application_status"
    " ON console_dispatches (application_id, status, requested_at, dispatch_uuid)",
    "CREATE INDEX IF NOT EXISTS console_failed_over"
    " ON console_dispatches (requested_at, dispatch_uuid) WHERE failed_over",
    "CREATE INDEX IF NOT EXISTS console_by_finish"
    " ON console_dispatches (finished_at, status) WHERE finished_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS console_abandoned"
    " ON console_dispatches (requested_at, dispatch_uuid) WHERE webhooks_abandoned > 0",
    "CREATE INDEX IF NOT EXISTS console_final_pending"
    " ON console_dispatches (dispatch_uuid) WHERE final_report_pending",
    "CREATE INDEX IF NOT EXISTS console_webhooks_pending"
    " ON console_dispatches (webhooks_pending) WHERE webhooks_pending > 0",
    "CREATE INDEX IF NOT EXISTS console_webhooks_abandoned"
    " ON console_dispatches (webhooks_abandoned) WHERE webhooks_abandoned > 0",
    """CREATE TABLE IF NOT EXISTS console_channels (
        channel TEXT COLLATE "C" NOT NULL,
        requested_at TEXT COLLATE "C" NOT NULL,
        dispatch_uuid TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (channel, requested_at, dispatch_uuid)
    )""",
    """CREATE TABLE IF NOT EXISTS console_failovers (
        dispatch_uuid TEXT NOT NULL,
        step INTEGER NOT NULL,
        reason TEXT NOT NULL,
        at TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (dispatch_uuid, step)
    )""",
    "CREATE INDEX IF NOT EXISTS console_failovers_by_time ON console_failovers (at, reason)",
    # The uuid-prefix search over message uuids, in byte order.
    'CREATE INDEX IF NOT EXISTS console_messages_by_uuid ON messages (message_uuid COLLATE "C")',
]

# Every value has a default for a view that lacks its field: a trigger that
# failed would fail the projector's write, and the read side would stop.
_FUNCTION = """
CREATE OR REPLACE FUNCTION console_index_view() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v jsonb := convert_from(NEW.view, 'UTF8')::jsonb;
    steps jsonb := coalesce(v->'steps', '[]'::jsonb);
    requested text := coalesce(v->>'requested_at', '');
BEGIN
    INSERT INTO console_dispatches (dispatch_uuid, application_id, status, requested_at,
        finished_at, failed_over, webhooks_abandoned, final_report_pending, channels,
        webhooks_pending)
    VALUES (
        NEW.dispatch_uuid,
        NEW.application_id,
        coalesce(v->>'status', 'in_progress'),
        requested,
        v->>'finished_at',
        coalesce((v->>'current_step')::int, 0) > 0,
        (SELECT count(*) FROM jsonb_array_elements_text(
                coalesce(v->'webhooks'->'abandoned', '[]'::jsonb)) AS a(id)
           WHERE a.id NOT IN (SELECT jsonb_array_elements_text(
                coalesce(v->'webhooks'->'delivered', '[]'::jsonb)))),
        v->>'finished_at' IS NOT NULL
            AND NOT coalesce((v->'final_report'->>'delivered')::boolean, false)
            AND NOT coalesce((v->'final_report'->>'abandoned')::boolean, false),
        (SELECT string_agg(channel, ',' ORDER BY first) FROM (
            SELECT s.value->>'channel' AS channel, min(s.i) AS first
            FROM jsonb_array_elements(steps) WITH ORDINALITY AS s(value, i)
            WHERE s.value->>'channel' IS NOT NULL GROUP BY 1) AS c),
        coalesce(jsonb_array_length(
            CASE jsonb_typeof(v->'webhooks'->'pending')
                WHEN 'array' THEN v->'webhooks'->'pending' END), 0)
    )
    ON CONFLICT (dispatch_uuid) DO UPDATE SET
        status = excluded.status, finished_at = excluded.finished_at,
        failed_over = excluded.failed_over, webhooks_abandoned = excluded.webhooks_abandoned,
        final_report_pending = excluded.final_report_pending,
        webhooks_pending = excluded.webhooks_pending;
    INSERT INTO console_channels (channel, requested_at, dispatch_uuid)
    SELECT DISTINCT s->>'channel', requested, NEW.dispatch_uuid
    FROM jsonb_array_elements(steps) AS s WHERE s->>'channel' IS NOT NULL
    ON CONFLICT DO NOTHING;
    INSERT INTO console_failovers (dispatch_uuid, step, reason, at)
    SELECT NEW.dispatch_uuid, s.i - 1, coalesce(p.value->>'state', 'unknown'),
           s.value->>'started_at'
    FROM jsonb_array_elements(steps) WITH ORDINALITY AS s(value, i)
    JOIN jsonb_array_elements(steps) WITH ORDINALITY AS p(value, i) ON p.i = s.i - 1
    WHERE s.i >= 2 AND s.value->>'started_at' IS NOT NULL
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$
"""

_TRIGGERS = [
    "DROP TRIGGER IF EXISTS console_view_written ON views",
    "CREATE TRIGGER console_view_written AFTER INSERT OR UPDATE OF view ON views"
    " FOR EACH ROW EXECUTE FUNCTION console_index_view()",
]


async def ensure_console_schema(db: Any) -> None:
    """Create or update the console's index; index the views written before
    it existed. Runs inside the caller's migration transaction."""
    for statement in [*_TABLES, _FUNCTION, *_TRIGGERS]:
        await db.execute(statement)
    indexed = await db.fetchval("SELECT 1 FROM console_dispatches LIMIT 1")
    if indexed is None and await db.fetchval("SELECT 1 FROM views LIMIT 1") is not None:
        await db.execute("UPDATE views SET view = view")  # fires the trigger for each
