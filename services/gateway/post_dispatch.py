"""``POST /v0.1/dispatch`` in three steps: decode → accept → answer.

- :func:`decode` turns the HTTP request into a :class:`DispatchCommand` (who
  calls, the validated workflow, the Idempotency-Key) or the problem that
  refuses it: 401/503 auth, 429, 415, 413, 400, 422 — in that order.
- :func:`accept` appends ``WorkflowRequested`` to the log (once per
  Idempotency-Key) and returns the dispatch's id, or the 422/503 problem.
- :class:`PostDispatch` answers: 202 only once Kafka acknowledged the event.

It is a plain ASGI endpoint: the path carries the gateway's throughput
target, and Starlette's ``Request`` and the per-request wrappers around a
function endpoint cost more than the few headers this route reads (see
``bench/RESULTS.md``, Gateway). Errors still reach the application's
exception handlers (a 500 problem without internals).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from events.dispatch import WorkflowRequested
from services.gateway.caller import identify_by_headers
from services.gateway.event_log import EventLogUnavailable
from services.gateway.idempotency import (
    FirstAttemptFailed,
    KeyReused,
    keyed_dispatch_uuid,
    request_hash,
    valid_key,
)
from services.gateway.json_limits import json_limit_problems
from services.gateway.problems import problem_response
from services.gateway.rate_limit import retry_after_header
from services.gateway.validation import validate_dispatch

if TYPE_CHECKING:
    from services.gateway.app import GatewayDeps

log = logging.getLogger(__name__)

INVALID = "Your request parameters did not validate."


@dataclass(frozen=True, slots=True)
class DispatchCommand:
    """A dispatch a caller may make, validated: what :func:`accept` appends."""

    application_id: str
    template: str
    # The validated body's workflow as sent: the models are strict and refuse
    # unknown fields, so there is nothing to dump back from them.
    workflow: list[dict[str, Any]]
    idempotency_key: str | None


class _Headers:
    """The few request headers this route reads, found in one pass."""

    __slots__ = ("authorization", "content_length", "content_type", "idempotency_key")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.authorization: list[str] = []
        self.content_type = ""
        self.content_length: str | None = None
        self.idempotency_key: str | None = None
        for name, value in raw:
            if name == b"authorization":
                self.authorization.append(value.decode("latin-1"))
            elif name == b"content-type":
                self.content_type = value.decode("latin-1")
            elif name == b"content-length":
                self.content_length = value.decode("latin-1")
            elif name == b"idempotency-key":
                self.idempotency_key = value.decode("latin-1")


class _BodyTooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def _read_body(receive: Receive, declared: str | None, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes as soon as they arrive
    (whatever ``Content-Length`` says, or when it is absent: chunked)."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _is_json(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


async def decode(scope: Scope, receive: Receive, deps: GatewayDeps) -> DispatchCommand | Response:
    settings = deps.settings
    headers = _Headers(scope["headers"])
    caller = identify_by_headers(
        headers.authorization, deps.applications, jwt_leeway_s=settings.jwt_leeway_s
    )
    if isinstance(caller, Response):
        return caller
    application_id = caller.application.application_id
    wait = deps.rate_limiter.acquire(application_id)
    if wait is not None:
        return problem_response(
            429,
            f"rate limit of {settings.rate_limit_per_s:g} requests/s exceeded",
            headers={"Retry-After": retry_after_header(wait)},
        )
    if not _is_json(headers.content_type):
        return problem_response(415, "send the dispatch as Content-Type: application/json")
    try:
        raw = await _read_body(receive, headers.content_length, settings.max_body_bytes)
    except _BodyTooLarge:
        return problem_response(413, f"the body is larger than {settings.max_body_bytes} bytes")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return problem_response(400, f"the body is not valid JSON: {exc}")
    beyond_limits = json_limit_problems(body, raw)
    if beyond_limits:
        return problem_response(422, INVALID, invalid_parameters=beyond_limits)
    key = headers.idempotency_key
    if key is not None and not valid_key(key):
        reason = "must be 1 to 255 visible ASCII characters"
        return problem_response(
            422, INVALID, invalid_parameters=[{"name": "Idempotency-Key", "reason": reason}]
        )
    result = validate_dispatch(body)
    if isinstance(result, list):
        return problem_response(422, INVALID, invalid_parameters=[p.as_dict() for p in result])
    return DispatchCommand(application_id, result.template, body["workflow"], key)


async def accept(deps: GatewayDeps, command: DispatchCommand, path: str) -> uuid.UUID | Response:
    """The accepted dispatch's id once its event is on the log, or the problem."""
    if command.idempotency_key is None:
        event = WorkflowRequested(
            dispatch_uuid=uuid.uuid4(),
            application_id=command.application_id,
            workflow=command.workflow,
        )
        try:
            await deps.event_log.append(event)
        except EventLogUnavailable as exc:
            return _unavailable(exc)
        return event.dispatch_uuid
    key = command.idempotency_key
    body_hash = request_hash(
        orjson.dumps(
            {"template": command.template, "workflow": command.workflow},
            option=orjson.OPT_SORT_KEYS,
        )
    )
    event = WorkflowRequested(
        dispatch_uuid=keyed_dispatch_uuid(command.application_id, key),
        application_id=command.application_id,
        workflow=command.workflow,
        idempotency_key=key,
        request_hash=body_hash,
    )
    try:
        await deps.idempotency.run_once(
            command.application_id, key, body_hash, lambda: deps.event_log.append(event)
        )
    except KeyReused:
        return problem_response(
            422,
            "This Idempotency-Key was already used with a different request body.",
            invalid_parameters=[
                {"name": "Idempotency-Key", "reason": "already used with a different body"}
            ],
            instance=path,
        )
    except (EventLogUnavailable, FirstAttemptFailed) as exc:
        return _unavailable(exc)
    return event.dispatch_uuid


def _unavailable(exc: Exception) -> Response:
    log.warning("dispatch not accepted, Kafka did not acknowledge: %s", exc)
    return problem_response(
        503,
        "The event log did not acknowledge the dispatch in time; nothing was accepted. "
        "Retry later (with the same Idempotency-Key to stay safe).",
        headers={"Retry-After": "1"},
    )


async def _answer_accepted(send: Send, dispatch_uuid: uuid.UUID) -> None:
    body = b'{"dispatch_uuid":"' + str(dispatch_uuid).encode() + b'"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class PostDispatch:
    """The route's ASGI endpoint: decode → accept → answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deps: GatewayDeps = scope["app"].state.deps
        try:
            decoded = await decode(scope, receive, deps)
        except _Disconnected:
            return  # nobody is listening for an answer
        if isinstance(decoded, Response):
            await decoded(scope, receive, send)
            return
        accepted = await accept(deps, decoded, scope["path"])
        if isinstance(accepted, Response):
            await accepted(scope, receive, send)
            return
        await _answer_accepted(send, accepted)
