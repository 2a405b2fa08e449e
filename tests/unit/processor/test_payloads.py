"""Webhook timestamps are written as the seed writes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from services.failover.payloads import seed_timestamp


def test_a_utc_time_is_written_with_milliseconds_and_z() -> None:
    moment = datetime(2026, 1, 1, 12, 0, 5, 123456, tzinfo=UTC)
    assert seed_timestamp(moment) == "2026-01-01T12:00:05.123Z"


def test_a_time_with_another_offset_is_converted_to_utc() -> None:
    moment = datetime(2026, 1, 1, 14, 0, 5, 9000, tzinfo=timezone(timedelta(hours=2)))
    assert seed_timestamp(moment) == "2026-01-01T12:00:05.009Z"
