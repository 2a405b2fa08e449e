"""What every event and command shares: identity, type, version, time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# Namespace for deterministic ids: a decision taken twice (a redelivered input)
# gets the same id twice, so every consumer can drop the duplicate.
ID_NAMESPACE = uuid.UUID("6f1c1f0e-4a52-5d8e-9a3b-2d0c7e5b9a41")


def deterministic_id(*parts: object) -> uuid.UUID:
    """uuid5 of the parts joined by ``:`` (e.g. dispatch, step, kind)."""
    return uuid.uuid5(ID_NAMESPACE, ":".join(str(p) for p in parts))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Message(BaseModel):
    """Base of events and commands: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: int = 1
    occurred_at: AwareDatetime = Field(default_factory=utcnow)

    def replace(self, **changes: Any) -> Any:
        return self.model_copy(update=changes)
