"""Parking what a consumer cannot read or handle: the dead-letter topic.

Every consumer sends such a record, unchanged, to ``dispatch.dead-letters``
with two headers, ``reason`` (why, at most 4,000 bytes) and ``source``
(``topic:partition:offset``), and goes on with the next one. Without this, a
record that makes a consumer raise would stop it, and a restart would read
it again and stop again. ``dispatch dead-letters`` style tooling, or an
operator with a console consumer, can read them back by source.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from services.producer import until_written

log = logging.getLogger(__name__)

REASON_BYTES = 4000


class _Writer(Protocol):
    async def send_and_wait(
        self, topic: str, value: bytes | None, key: bytes | None = None, *, headers: Any = None
    ) -> Any: ...


def headers_for(source: str, reason: str) -> list[tuple[str, bytes]]:
    return [("reason", reason.encode()[:REASON_BYTES]), ("source", source.encode())]


class DeadLetters:
    def __init__(self, producer: _Writer, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def park(self, record: Any, reason: str) -> None:
        """Write ``record`` (an aiokafka ConsumerRecord) to the dead-letter
        topic, retrying until it lands: it is the only copy that stays."""
        source = f"{record.topic}:{record.partition}:{record.offset}"
        log.warning("dead-lettered %s: %s", source, reason[:500])
        headers = headers_for(source, reason)
        await until_written(
            lambda: self._producer.send_and_wait(
                self._topic, record.value, key=None, headers=headers
            ),
            what=f"the dead letter of {source}",
        )
