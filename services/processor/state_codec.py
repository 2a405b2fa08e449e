"""How the processor stores a dispatch's state in its table: orjson, ISO times.

The bytes are those the processor wrote before the rules moved to
``services/failover`` (times as ``isoformat()`` text, the workflow as the
client sent it, fields in declaration order), so a restart on an existing
RocksDB or changelog reads its states as they are, and a state written before
a field existed gets that field's default.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

import orjson

from services.failover.state import DispatchState, SendFailure, StepState
from services.failover.workflow import Workflow

_D = TypeVar("_D")

_STATE_FIELDS = len(fields(DispatchState))
_STEP_FIELDS = len(fields(StepState))
_fromisoformat = datetime.fromisoformat


def _stored_form(value: Any) -> Any:
    if isinstance(value, Workflow):
        return value.as_sent
    raise TypeError(f"not part of a stored state: {type(value).__name__}")


def encode_state(state: DispatchState) -> bytes:
    # orjson writes dataclasses natively (far faster than asdict()) and
    # datetimes as isoformat() does.
    return orjson.dumps(state, default=_stored_form)


def decode_state(data: bytes) -> DispatchState:
    return state_from_stored(orjson.loads(data))


def stored_form(state: DispatchState) -> dict[str, Any]:
    """The state as the JSON object the processor stores (for a read model
    that keeps it inside its own JSON)."""
    stored: dict[str, Any] = orjson.loads(encode_state(state))
    return stored


def state_from_stored(raw: dict[str, Any]) -> DispatchState:
    """The state from its stored JSON object, parsed (taken over, not copied)."""
    raw["workflow"] = Workflow(raw["workflow"])
    raw["steps"] = [_step(s) for s in raw["steps"]]
    return _made(DispatchState, _STATE_FIELDS, raw)


def _step(raw: dict[str, Any]) -> StepState:
    # Unrolled: three lookups per step of every state decoded.
    if (text := raw.get("started_at")) is not None:
        raw["started_at"] = _fromisoformat(text)
    if (text := raw.get("submitted_at")) is not None:
        raw["submitted_at"] = _fromisoformat(text)
    if (text := raw.get("deadline_at")) is not None:
        raw["deadline_at"] = _fromisoformat(text)
    failure = raw.get("send_failed")
    if failure is not None:
        raw["send_failed"] = SendFailure(
            code=failure.get("code"),
            reason=failure["reason"],
            at=_fromisoformat(failure["at"]),
            event_id=failure.get("event_id", ""),
        )
    return _made(StepState, _STEP_FIELDS, raw)


def _made(cls: type[_D], field_count: int, values: dict[str, Any]) -> _D:
    """``cls(**values)``. A state written by this version has every field
    (``encode_state`` writes them all), so the parsed dict becomes the object's
    attributes as it is: a third of a decode went to the dataclass ``__init__``.
    One written before a field existed goes through ``__init__`` for its default."""
    if len(values) != field_count:
        return cls(**values)
    made = object.__new__(cls)
    made.__dict__ = values
    return made
