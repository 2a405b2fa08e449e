"""``message_uuid`` → (dispatch, step) for a status without a ``client_ref``.

Every message this system sends carries a ``client_ref`` naming its dispatch
and step, and the provider echoes it in its statuses, so this lookup is the
exception (a provider that drops the reference). It asks the read side (the
projector's message table) instead of each gateway following the whole log
and holding every message ever sent in memory. A message submitted a moment
ago may not be projected yet: a miss is asked again for up to ``wait_s``
before it counts as unknown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from services.gateway.reads import ProjectorClient, ProjectorUnavailable


@dataclass(frozen=True)
class MessageRef:
    dispatch_uuid: uuid.UUID
    step: int


class LookupUnavailable(Exception):
    """The read side could not be asked (the provider is told to retry)."""


class MessageLookup(Protocol):
    async def lookup(self, message_uuid: str) -> MessageRef | None: ...


class ReadSideLookup:
    def __init__(
        self, projector_url: str, *, wait_s: float = 2.0, timeout_s: float = 2.0, token: str = ""
    ) -> None:
        # ``token``: the internal token the projector's API asks for when it
        # listens beyond loopback (services/internal_endpoints.py).
        self._projector = ProjectorClient(
            projector_url, timeout_s=timeout_s, fresh_wait_s=wait_s, token=token
        )

    async def lookup(self, message_uuid: str) -> MessageRef | None:
        if not message_uuid.isprintable() or "/" in message_uuid:
            return None  # not a path segment the read side could know
        try:
            found = await self._projector.get(f"/internal/messages/{message_uuid}")
        except ProjectorUnavailable as exc:
            raise LookupUnavailable(str(exc)) from exc
        if found is None:
            return None
        try:
            return MessageRef(uuid.UUID(str(found["dispatch_uuid"])), int(found["step"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise LookupUnavailable(f"unexpected answer from the read side: {exc!r}") from exc

    async def close(self) -> None:
        await self._projector.close()
