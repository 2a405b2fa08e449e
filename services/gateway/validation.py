"""One entry point for validating a dispatch: the models' shape errors and the
cross-field rules, merged into one list with JSON-ish paths
(``workflow[1].to.number``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from services.gateway.rules import InvalidParameter, check_dispatch
from services.gateway.schema import MAX_WORKFLOW_MESSAGES, DispatchRequest

_REASONS = {
    "missing": "is required",
    "extra_forbidden": "is not a recognised field",
    "too_short": "must contain at least one message",
    "too_long": f"must contain at most {MAX_WORKFLOW_MESSAGES} messages",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be an array",
    "int_type": "must be an integer",
    "string_type": "must be a string",
}


def json_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path or "body"


def _reason(error: ErrorDetails) -> str:
    kind = error["type"]
    if kind in ("too_short", "too_long") and error["loc"] != ("workflow",):
        return error["msg"]
    return _REASONS.get(kind, error["msg"])


def validate_dispatch(body: Any) -> DispatchRequest | list[InvalidParameter]:
    """The validated request, or every invalid parameter (never just the first)."""
    problems: dict[str, InvalidParameter] = {}
    request: DispatchRequest | None = None
    try:
        request = DispatchRequest.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            name = json_path(error["loc"])
            problems.setdefault(name, InvalidParameter(name, _reason(error)))
    for problem in check_dispatch(body):
        problems.setdefault(problem.name, problem)
    if problems:
        return list(problems.values())
    assert request is not None
    return request
