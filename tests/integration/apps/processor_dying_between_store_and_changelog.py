"""The processor, made to die (exit 86) at its first write of the dispatches
table: after the partition's RocksDB has the new state, before that state's
changelog record is handed to the producer. A kill -9 can land in that
window; this makes it certain."""

from __future__ import annotations

import os
from typing import Any

from services.processor.main import main
from services.processor.runtime import outbox

_add = outbox.Outbox.add


async def add_or_die(self: outbox.Outbox, topic: str, *args: Any, **kwargs: Any) -> None:
    if topic.endswith("-dispatches-changelog"):
        os._exit(86)
    await _add(self, topic, *args, **kwargs)


outbox.Outbox.add = add_or_die  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
