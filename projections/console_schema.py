"""The operator console's index of the projection store (SQLite).

The views table keeps each dispatch as one JSON document, which answers "show
me this dispatch" but not "the 50 newest failed WhatsApp dispatches of this
application" at a million dispatches. These tables hold the few columns the
console filters, sorts and counts on, kept in step with ``views`` by triggers,
so the projector writes exactly what it wrote before and the index can never
disagree with the views it was derived from (same transaction).

- ``console_dispatches``: one row per dispatch (status, times, flags).
- ``console_channels``: one row per channel a dispatch uses (filter by channel).
- ``console_failovers``: one row per failover: the step that started after a
  step ended, with that step's end state as the reason.

The views column holds orjson bytes: SQLite's JSON functions read text, hence
the ``CAST``. Every column has a default for a view that lacks its field (an
older or partial view): a trigger that failed would fail the projector's
write, and the read side would stop.
"""

from __future__ import annotations

import sqlite3

_VIEW = "CAST(NEW.view AS TEXT)"

_SUMMARY_COLUMNS = f"""
    NEW.dispatch_uuid,
    NEW.application_id,
    coalesce(json_extract({_VIEW}, '$.status'), 'in_progress'),
    coalesce(json_extract({_VIEW}, '$.requested_at'), ''),
    json_extract({_VIEW}, '$.finished_at'),
    coalesce(json_extract({_VIEW}, '$.current_step'), 0) > 0,
    (SELECT count(*) FROM json_each({_VIEW}, '$.webhooks.abandoned') AS a
       WHERE a.value NOT IN (SELECT value FROM json_each({_VIEW}, '$.webhooks.delivered'))),
    coalesce(json_extract({_VIEW}, '$.finished_at') IS NOT NULL
      AND NOT json_extract({_VIEW}, '$.final_report.delivered')
      AND NOT json_extract({_VIEW}, '$.final_report.abandoned'), 0),
    (SELECT group_concat(DISTINCT json_extract(s.value, '$.channel'))
       FROM json_each({_VIEW}, '$.steps') AS s),
    coalesce(json_array_length({_VIEW}, '$.webhooks.pending'), 0)
"""

_SUMMARY_NAMES = """
    dispatch_uuid, application_id, status, requested_at, finished_at, failed_over,
    webhooks_abandoned, final_report_pending, channels, webhooks_pending
"""

_FAILOVERS = f"""
    INSERT INTO console_failovers (dispatch_uuid, step, reason, at)
    SELECT NEW.dispatch_uuid, s.key, coalesce(json_extract(p.value, '$.state'), 'unknown'),
           json_extract(s.value, '$.started_at')
    FROM json_each({_VIEW}, '$.steps') AS s
    JOIN json_each({_VIEW}, '$.steps') AS p ON p.key = s.key - 1
    WHERE s.key >= 1 AND json_extract(s.value, '$.started_at') IS NOT NULL
    ON CONFLICT DO NOTHING;
"""

_TRIGGER_BODY = f"""
    INSERT INTO console_dispatches ({_SUMMARY_NAMES}) VALUES ({_SUMMARY_COLUMNS})
    ON CONFLICT (dispatch_uuid) DO UPDATE SET
        status = excluded.status, finished_at = excluded.finished_at,
        failed_over = excluded.failed_over, webhooks_abandoned = excluded.webhooks_abandoned,
        final_report_pending = excluded.final_report_pending,
        webhooks_pending = excluded.webhooks_pending;
    INSERT INTO console_channels (channel, requested_at, dispatch_uuid)
    SELECT DISTINCT json_extract(s.value, '$.channel'),
           coalesce(json_extract({_VIEW}, '$.requested_at'), ''),
           NEW.dispatch_uuid
    FROM json_each({_VIEW}, '$.steps') AS s WHERE json_extract(s.value, '$.channel') IS NOT NULL
    ON CONFLICT DO NOTHING;
    {_FAILOVERS}
"""

CONSOLE_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_dispatches (
    dispatch_uuid TEXT PRIMARY KEY,
    application_id TEXT NOT NULL,
    status TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    finished_at TEXT,
    failed_over INTEGER NOT NULL,
    webhooks_abandoned INTEGER NOT NULL,
    final_report_pending INTEGER NOT NULL,
    channels TEXT,  -- comma-separated, for display (filtering uses console_channels)
    webhooks_pending INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS console_by_time ON console_dispatches (requested_at, dispatch_uuid);
CREATE INDEX IF NOT EXISTS console_by_status
    ON console_dispatches (status, requested_at, dispatch_uuid);
CREATE INDEX IF NOT EXISTS console_by_application
    ON console_dispatches (application_id, requested_at, dispatch_uuid);
CREATE INDEX IF NOT EXISTS console_by_application_status
    ON console_dispatches (application_id, status, requested_at, dispatch_uuid);
CREATE INDEX IF NOT EXISTS console_failed_over
    ON console_dispatches (requested_at, dispatch_uuid) WHERE failed_over;
CREATE INDEX IF NOT EXISTS console_by_finish
    ON console_dispatches (finished_at, status) WHERE finished_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS console_abandoned
    ON console_dispatches (requested_at, dispatch_uuid) WHERE webhooks_abandoned > 0;
CREATE INDEX IF NOT EXISTS console_final_pending
    ON console_dispatches (dispatch_uuid) WHERE final_report_pending;

CREATE TABLE IF NOT EXISTS console_channels (
    channel TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    dispatch_uuid TEXT NOT NULL,
    PRIMARY KEY (channel, requested_at, dispatch_uuid)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS console_failovers (
    dispatch_uuid TEXT NOT NULL,
    step INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (dispatch_uuid, step)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS console_failovers_by_time ON console_failovers (at, reason);

"""

# Made again on every open, so a store from an older version gets the
# current body (one transaction: no write sees the views without them).
CONSOLE_TRIGGERS = f"""
BEGIN IMMEDIATE;
DROP TRIGGER IF EXISTS console_view_inserted;
DROP TRIGGER IF EXISTS console_view_updated;
CREATE TRIGGER console_view_inserted AFTER INSERT ON views BEGIN
    {_TRIGGER_BODY}
END;
CREATE TRIGGER console_view_updated AFTER UPDATE OF view ON views BEGIN
    {_TRIGGER_BODY}
END;
COMMIT;
"""

# Columns added since the first version of the index: (name, definition).
_ADDED_COLUMNS = [("webhooks_pending", "INTEGER NOT NULL DEFAULT 0")]

# Sums over these read only the dispatches that have any (partial indexes
# holding the count): the overview's backlog stays cheap at a million.
_LATER_INDEXES = """
CREATE INDEX IF NOT EXISTS console_webhooks_pending
    ON console_dispatches (webhooks_pending) WHERE webhooks_pending > 0;
CREATE INDEX IF NOT EXISTS console_webhooks_abandoned
    ON console_dispatches (webhooks_abandoned) WHERE webhooks_abandoned > 0;
"""


def ensure_console_schema(db: sqlite3.Connection) -> None:
    """Create the console's tables and triggers, and index any views written
    before they existed (a store from an older version)."""
    db.executescript(CONSOLE_SCHEMA)
    present = {row[1] for row in db.execute("PRAGMA table_info(console_dispatches)")}
    for name, definition in _ADDED_COLUMNS:
        if name not in present:
            # Views written before the column are counted as 0 until they
            # change again (their views lack the field anyway until a replay).
            db.execute(f"ALTER TABLE console_dispatches ADD COLUMN {name} {definition}")
    db.executescript(_LATER_INDEXES)
    db.executescript(CONSOLE_TRIGGERS)
    indexed = db.execute("SELECT 1 FROM console_dispatches LIMIT 1").fetchone()
    if indexed is None and db.execute("SELECT 1 FROM views LIMIT 1").fetchone() is not None:
        # Rewriting each view with itself fires the update trigger.
        db.executescript("BEGIN; UPDATE views SET view = view; COMMIT;")
