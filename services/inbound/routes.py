"""``POST /v0.1/status``: Messages API status callbacks into ``dispatch.events``.

Accepted callbacks answer 204, also when posted again (the event id is
deterministic, so a duplicate is recognisable downstream). Errors are
problem+json: 401 bad signature, 404 unknown message_uuid, 413 body too large,
415 not JSON, 400 malformed JSON, 422 invalid fields, 503 Kafka unavailable.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka.errors import KafkaError
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from events.codec import encode, from_json
from events.references import parse_client_ref
from services.gateway.body import BodyTooLarge, read_body
from services.gateway.json_limits import json_limit_problems
from services.gateway.problems import problem_response
from services.gateway.rate_limit import RateLimiter, retry_after_header
from services.inbound.callback import StatusCallback, invalid_parameters, status_event
from services.inbound.lookup import LookupUnavailable, MessageLookup, MessageRef
from services.inbound.settings import DEFAULT_MAX_AGE_S
from services.payload_signature import InvalidPayloadSignature, verify
from services.producer import EventWriter, ProducerUnavailable

log = logging.getLogger(__name__)

STATUS_PATH = "/v0.1/status"
MAX_BODY_BYTES = 64 * 1024
# Clock skew tolerated between the provider and us (a callback "signed" this
# far in the future is still accepted).
CLOCK_SKEW_S = 30.0


@dataclass
class InboundDeps:
    # For a status without a client_ref of ours (the read side's message table).
    lookup: MessageLookup
    # The host's producer: a ``RebuildingProducer`` in the gateway, so a
    # producer wedged by a broker restart is replaced, not kept failing.
    producer: EventWriter
    events_topic: str
    # Every callback must be signed with this (401 otherwise, before anything
    # is looked up or written), unless unsigned callbacks are explicitly allowed.
    signature_secret: str = ""
    allow_unsigned: bool = False
    signature_max_age_s: float = DEFAULT_MAX_AGE_S
    # Callbacks admitted per second (and burst) on this process: a provider
    # that floods, or someone posting for it, gets 429 before any work.
    rate_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(2000.0, 4000))
    produce_timeout_s: float = 10.0


def ref_from_client_ref(text: str | None) -> MessageRef | None:
    """The dispatch and step a ``client_ref`` of ours names (the sender sends
    every message with one): no lookup needed, and a send whose outcome was
    unknown learns its message from it."""
    parsed = parse_client_ref(text)
    return MessageRef(*parsed) if parsed is not None else None


def inbound_routes(deps: InboundDeps) -> list[Route]:
    async def receive_status(request: Request) -> Response:
        wait = deps.rate_limiter.acquire("callbacks")
        if wait is not None:
            return problem_response(
                429,
                "Too many status callbacks; retry later.",
                headers={"Retry-After": retry_after_header(wait)},
            )
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
                    future_skew_s=CLOCK_SKEW_S,
                )
            except InvalidPayloadSignature as exc:
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
        ref = ref_from_client_ref(callback.client_ref)
        if ref is None:
            try:
                ref = await deps.lookup.lookup(callback.message_uuid)
            except LookupUnavailable as exc:
                log.warning("could not look up %s: %s", callback.message_uuid, exc)
                retry = {"Retry-After": "5"}
                return problem_response(503, "The status could not be routed.", headers=retry)
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
        except (KafkaError, TimeoutError, ProducerUnavailable) as exc:
            log.warning("could not append status of %s: %s", callback.message_uuid, exc)
            return problem_response(
                503, "The status could not be recorded; retry later.", headers={"Retry-After": "5"}
            )
        return Response(status_code=204)

    return [Route(STATUS_PATH, receive_status, methods=["POST"])]
