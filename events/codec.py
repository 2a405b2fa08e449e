"""The one JSON codec (orjson) for every event and command on Kafka."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import orjson
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from events import upcasts
from events.applications import ApplicationRegistered
from events.base import Message
from events.commands import DeliverWebhook, SendMessage
from events.dispatch import (
    MessageOutcomeUnknown,
    MessageSendFailed,
    MessageStatusReceived,
    MessageSubmitted,
    StepStarted,
    StepTimedOut,
    Tick,
    TimerScheduled,
    UsageAmended,
    WebhookAbandoned,
    WebhookAttemptFailed,
    WebhookDelivered,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowRequested,
)

LogEvent = (
    WorkflowRequested
    | StepStarted
    | MessageSubmitted
    | MessageSendFailed
    | MessageOutcomeUnknown
    | MessageStatusReceived
    | TimerScheduled
    | StepTimedOut
    | WorkflowCompleted
    | WorkflowFailed
    | UsageAmended
    | WebhookDelivered
    | WebhookAbandoned
    | WebhookAttemptFailed
    | Tick
)
"""Anything that may be read from ``dispatch.events``."""

_log_event = TypeAdapter[LogEvent](Annotated[LogEvent, Field(discriminator="type")])
_send = TypeAdapter(SendMessage)
_webhook = TypeAdapter(DeliverWebhook)
_application = TypeAdapter(ApplicationRegistered)

M = TypeVar("M", bound=Message)


class UndecodableMessage(ValueError):
    """Bytes that are not JSON, or JSON that matches no known schema."""


# What the processor writes, several per event: types with no field alias
# (nor nested models with one), so their attributes, in declaration order, are
# exactly what pydantic-core writes. orjson writes that dict 2-3x faster, the
# same bytes (``tests/unit/test_codec.py`` holds them equal for every output
# the engine makes).
_PLAIN: frozenset[type[Message]] = frozenset(
    {
        StepStarted,
        StepTimedOut,
        TimerScheduled,
        WorkflowCompleted,
        WorkflowFailed,
        UsageAmended,
        SendMessage,
        DeliverWebhook,
        Tick,
    }
)
_UTC_Z = orjson.OPT_UTC_Z


def _nested(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.__dict__
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def encode(message: Message) -> bytes:
    if message.__class__ in _PLAIN:
        try:
            return orjson.dumps(message.__dict__, option=_UTC_Z, default=_nested)
        except orjson.JSONEncodeError:
            pass  # e.g. an integer beyond 64 bits in a client's payload: pydantic writes it
    # pydantic-core's own JSON serializer: no intermediate dict (times are
    # written RFC 3339 with "Z" for UTC).
    return message.__pydantic_serializer__.to_json(message, by_alias=True)


def to_json(value: Any) -> bytes:
    """orjson for plain data (HTTP bodies, webhook payloads)."""
    return orjson.dumps(value)


def from_json(data: bytes | str) -> Any:
    return orjson.loads(data)


def _decode(adapter: TypeAdapter[Any], data: bytes) -> Any:
    try:
        # Parsed and validated in one pass by pydantic-core (no intermediate
        # dict), calling its validator without the adapter's Python wrapper.
        return adapter.validator.validate_json(data)
    except ValidationError as exc:
        # Never the offending input in the message: records hold secrets and
        # personal data, and this message reaches logs.
        errors = exc.errors(include_input=False, include_url=False)
        if errors and errors[0]["type"] == "json_invalid":
            raise UndecodableMessage(f"not JSON: {errors[0]['msg']}") from exc
        raise UndecodableMessage(f"no known schema matches: {errors[:3]}") from exc


def _json_or_none(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None


def decode_event(data: bytes) -> LogEvent:
    """A record of ``dispatch.events`` in today's shape: one of an older
    schema version is upgraded first (``events/upcasts.py``)."""
    try:
        result: LogEvent = _decode(_log_event, data)
    except UndecodableMessage:
        # Only a record today's schemas refuse pays for the second parse.
        record = _json_or_none(data)
        if not upcasts.outdated(record):
            raise
        upgraded = upcasts.upcast(record)
        try:
            result = _log_event.validator.validate_python(upgraded)
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
            raise UndecodableMessage(f"no known schema matches: {errors[:3]}") from exc
    return result


def decode_send(data: bytes) -> SendMessage:
    result: SendMessage = _decode(_send, data)
    return result


def decode_webhook(data: bytes) -> DeliverWebhook:
    result: DeliverWebhook = _decode(_webhook, data)
    return result


def decode_application(data: bytes) -> ApplicationRegistered:
    result: ApplicationRegistered = _decode(_application, data)
    return result
