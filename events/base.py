"""What every event and command shares: identity, type, version, time."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# Namespace for deterministic ids: a decision taken twice (a redelivered input)
# gets the same id twice, so every consumer can drop the duplicate.
ID_NAMESPACE = uuid.UUID("6f1c1f0e-4a52-5d8e-9a3b-2d0c7e5b9a41")


_NAMESPACE_BYTES = ID_NAMESPACE.bytes
# The bits uuid5 fixes: variant (RFC 4122) and version (5).
_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_SET = (0x8000 << 48) | (5 << 76)


def deterministic_id(*parts: object) -> uuid.UUID:
    """uuid5 of the parts joined by ``:`` (e.g. dispatch, step, kind).

    Computed as ``uuid.uuid5`` does, without ``UUID.__init__``'s argument
    checks: the processor takes several of these per decision (a unit test
    holds it equal to ``uuid.uuid5``).
    """
    if len(parts) == 3:  # (dispatch, step, kind), most of them: no list to build
        name = f"{parts[0]}:{parts[1]}:{parts[2]}".encode()
    else:
        name = ":".join([str(p) for p in parts]).encode()
    digest = hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()
    return _uuid_from_int((int.from_bytes(digest[:16]) & _CLEAR) | _SET)


_TEXTS: dict[int, str] = {}
_UUIDS: dict[str, uuid.UUID] = {}
_REMEMBERED_MAX = 8192


def uuid_of(text: str) -> uuid.UUID:
    """``uuid.UUID(text)``, remembered: a dispatch's id is parsed for every
    decision taken about it (and known already if ``uuid_text`` named it)."""
    value = _UUIDS.get(text)
    if value is None:
        if len(_UUIDS) >= _REMEMBERED_MAX:
            _UUIDS.clear()
        value = _UUIDS[text] = uuid.UUID(text)
    return value


def uuid_text(value: uuid.UUID) -> str:
    """``str(value)``, remembered: the processor names a dispatch by its text
    several times per event (``UUID.__str__`` formats it in Python each time)."""
    text = _TEXTS.get(value.int)
    if text is None:
        if len(_TEXTS) >= _REMEMBERED_MAX:
            _TEXTS.clear()
            _UUIDS.clear()
        text = _TEXTS[value.int] = str(value)
        _UUIDS[text] = value
    return text


_SAFE_UNKNOWN = uuid.SafeUUID.unknown  # an enum member: slow to look up each time


def _uuid_from_int(value: int) -> uuid.UUID:
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", _SAFE_UNKNOWN)
    return made


def utcnow() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """Base of events and commands: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    # The versions this code can read: a record written by a newer version is
    # refused (and dead-lettered) rather than misread as an older shape.
    schema_version: Literal[1] = 1
    occurred_at: AwareDatetime = Field(default_factory=utcnow)

    def replace(self, **changes: Any) -> Any:
        return self.model_copy(update=changes)
