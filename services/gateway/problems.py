"""RFC 7807 ``application/problem+json`` responses, in the seed's shape.

Every error the HTTP API returns goes through :func:`problem_response`, so a
client always sees ``type``, ``title``, ``detail``, ``instance`` and, for
validation errors, ``invalid_parameters`` naming each bad field and why.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_BASE = "https://dispatch.dev/problems/"

TITLES: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Malformed request"),
    401: ("unauthorized", "Invalid credentials"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("invalid-params", "Invalid parameters"),
    429: ("too-many-requests", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


class ProblemResponse(Response):
    media_type = "application/problem+json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def problem_body(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    invalid_parameters: Sequence[Mapping[str, str]] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    slug, default_title = TITLES.get(status, ("error", "Error"))
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title or default_title,
        "status": status,
        "detail": detail,
        "instance": instance or uuid.uuid4().hex,
    }
    if invalid_parameters:
        body["invalid_parameters"] = [dict(p) for p in invalid_parameters]
    return body


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    invalid_parameters: Sequence[Mapping[str, str]] | None = None,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    """A problem+json response; ``invalid_parameters`` items are ``{name, reason}``."""
    body = problem_body(
        status, detail, title=title, invalid_parameters=invalid_parameters, instance=instance
    )
    return ProblemResponse(body, status_code=status, headers=dict(headers or {}))
