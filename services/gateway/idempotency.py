"""``Idempotency-Key``: a repeated request gets the same dispatch_uuid and no
second event.

The dispatch_uuid of a keyed request is ``uuid5(application_id, key)``, so a
repeat maps to the same dispatch on any gateway process and across restarts.
Whether the body is the same is remembered per process, in a bounded LRU of
key -> request hash per application (one application's keys never evict
another's): within one process a repeat produces no second event
and a different body under the same key gets a 422. A repeat that reaches
another process (or this one after a restart or after eviction) appends a
second ``WorkflowRequested`` with the same dispatch_uuid and its
``request_hash``; consumers keep the first one per dispatch_uuid.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from events.base import deterministic_id

MAX_KEY_LENGTH = 255
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as HTTP header tokens


def valid_key(key: str) -> bool:
    return bool(_KEY.fullmatch(key))


def keyed_dispatch_uuid(application_id: str, key: str) -> uuid.UUID:
    return deterministic_id("idempotency", application_id, key)


def request_hash(canonical_body: bytes) -> str:
    return hashlib.sha256(canonical_body).hexdigest()


class KeyReused(Exception):
    """The key was used before with a different body."""


class FirstAttemptFailed(Exception):
    """A repeat waited for the first request with its key, and that one failed."""


@dataclass
class _Entry:
    request_hash: str
    # Resolved once the first request's event is acknowledged; a concurrent
    # repeat waits on it instead of producing a second event.
    done: asyncio.Future[None]


class IdempotencyCache:
    def __init__(self, max_entries: int) -> None:
        # Per application: the number of applications is bounded by the
        # registry, so the whole cache never grows with all-time traffic.
        self._max = max_entries
        self._by_application: dict[str, OrderedDict[str, _Entry]] = {}

    async def run_once(
        self,
        application_id: str,
        key: str,
        body_hash: str,
        append: Callable[[], Awaitable[None]],
    ) -> None:
        """Run ``append`` for the first request with this key; repeats with the
        same body wait for it, repeats with another body raise KeyReused. A
        failed append is forgotten, so the client may retry."""
        entries = self._by_application.setdefault(application_id, OrderedDict())
        slot = key
        entry = entries.get(slot)
        if entry is not None:
            entries.move_to_end(slot)
            if entry.request_hash != body_hash:
                raise KeyReused()
            await asyncio.shield(entry.done)
            return
        entry = _Entry(body_hash, asyncio.get_running_loop().create_future())
        entries[slot] = entry
        while len(entries) > self._max:
            entries.popitem(last=False)
        try:
            await append()
        except BaseException as exc:
            if entries.get(slot) is entry:
                del entries[slot]
            entry.done.set_exception(FirstAttemptFailed(repr(exc)))
            entry.done.exception()  # retrieved: no "never retrieved" warning
            raise
        entry.done.set_result(None)
