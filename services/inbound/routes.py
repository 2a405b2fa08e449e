"""``POST /v0.1/status``: Messages API status callbacks into ``dispatch.events``.

Accepted callbacks answer 204, also when posted again (the event id is
deterministic, so a duplicate is recognisable downstream). Errors are
problem+json: 401 bad signature, 404 unknown message_uuid, 413 body too large,
415 not JSON, 400 malformed JSON, 422 invalid fields, 503 Kafka unavailable.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from events.codec import encode, from_json
from services.gateway.body import BodyTooLarge, read_body
from services.gateway.json_limits import json_limit_problems
from services.gateway.problems import problem_response
from services.inbound.callback import StatusCallback, invalid_parameters, status_event
from services.inbound.index import MessageIndex
from services.inbound.signature import DEFAULT_MAX_AGE_S, InvalidSignature, verify

log = logging.getLogger(__name__)

STATUS_PATH = "/v0.1/status"
MAX_BODY_BYTES = 64 * 1024


@dataclass
class InboundDeps:
    index: MessageIndex
    producer: AIOKafkaProducer
    events_topic: str
    # Every callback must be signed with this (401 otherwise, before anything
    # is looked up or written), unless unsigned callbacks are explicitly allowed.
    signature_secret: str = ""
    allow_unsigned: bool = False
    signature_max_age_s: float = DEFAULT_MAX_AGE_S
    # How long an unknown message_uuid waits for the index to catch up.
    lookup_wait_s: float = 2.0
    produce_timeout_s: float = 10.0


def inbound_routes(deps: InboundDeps) -> list[Route]:
    async def receive_status(request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return problem_response(415, "Status callbacks must be application/json.")
        try:  # streamed with a running cap, never read whole first
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge:
            return problem_response(413, f"The body exceeds {MAX_BODY_BYTES} bytes.")
        if not deps.allow_unsigned:
            try:
                verify(
                    request.headers.get("authorization"),
                    body,
                    deps.signature_secret,
                    max_age_s=deps.signature_max_age_s,
                )
            except InvalidSignature as exc:
                return problem_response(
                    401, str(exc), headers={"WWW-Authenticate": 'Bearer realm="status"'}
                )
        try:
            raw = from_json(body)
        except ValueError:
            return problem_response(400, "The body is not valid JSON.")
        if not isinstance(raw, dict):
            return problem_response(422, "The body must be a JSON object.")
        if beyond_limits := json_limit_problems(raw, body):
            return problem_response(
                422, "The status callback has invalid fields.", invalid_parameters=beyond_limits
            )
        try:
            callback = StatusCallback.model_validate(raw)
        except ValidationError as exc:
            return problem_response(
                422,
                "The status callback has invalid fields.",
                invalid_parameters=invalid_parameters(exc),
            )
        ref = await deps.index.lookup(callback.message_uuid, wait=deps.lookup_wait_s)
        if ref is None:
            return problem_response(404, f"No message with message_uuid {callback.message_uuid}.")
        event = status_event(callback, ref)
        try:
            await asyncio.wait_for(
                deps.producer.send_and_wait(
                    deps.events_topic, encode(event), key=str(ref.dispatch_uuid).encode()
                ),
                deps.produce_timeout_s,
            )
        except (KafkaError, TimeoutError) as exc:
            log.warning("could not append status of %s: %s", callback.message_uuid, exc)
            return problem_response(
                503, "The status could not be recorded; retry later.", headers={"Retry-After": "5"}
            )
        return Response(status_code=204)

    return [Route(STATUS_PATH, receive_status, methods=["POST"])]
