"""The list page's query string, read into :class:`Filters` or named errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.datastructures import QueryParams

from projections.console_queries import CHANNELS, STATUSES, Filters

_SEARCH = re.compile(r"^[0-9a-fA-F-]{1,36}$")
_CURSOR = re.compile(r"^(?P<at>[0-9T:.+\-]{10,40})\|(?P<uuid>[0-9a-f-]{36})$")


class InvalidFilter(ValueError):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def _time(name: str, text: str) -> str:
    """An ISO 8601 time (a browser's datetime-local has no zone: UTC is meant)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidFilter(name, "not a time; use ISO 8601, e.g. 2026-05-01T12:00") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def parse_filters(params: QueryParams) -> Filters:
    def given(name: str) -> str | None:
        value = params.get(name, "").strip()
        return value or None

    status = given("status")
    if status is not None and status not in STATUSES:
        raise InvalidFilter("status", f"must be one of {', '.join(STATUSES)}")
    channel = given("channel")
    if channel is not None and channel not in CHANNELS:
        raise InvalidFilter("channel", f"must be one of {', '.join(CHANNELS)}")
    search = given("q")
    if search is not None and not _SEARCH.match(search):
        raise InvalidFilter("q", "search by a dispatch or message uuid, or its first characters")
    before = None
    cursor = given("before")
    if cursor is not None:
        match = _CURSOR.match(cursor)
        if match is None:
            raise InvalidFilter("before", "not a page position this console gave out")
        before = (match["at"], match["uuid"])
    application = given("application")
    if application is not None and len(application) > 200:
        raise InvalidFilter("application", "longer than any application id")
    since = given("since")
    until = given("until")
    return Filters(
        application_id=application,
        status=status,
        channel=channel,
        failed_over=params.get("failed_over") in ("1", "on", "true"),
        abandoned=params.get("abandoned") in ("1", "on", "true"),
        since=_time("since", since) if since else None,
        until=_time("until", until) if until else None,
        search=search,
        before=before,
    )
