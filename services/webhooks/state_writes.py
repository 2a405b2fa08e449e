"""The outcome state records of webhooks, written a batch at a time.

Every webhook's first attempt ends with two writes: its outcome event on
``dispatch.events`` (the history) and its state record on the deliverer's
compacted state topic (what a restart or the next owner of the partition
reads). Written one after the other, each webhook cost two produce requests;
under a trickle (three webhooks a dispatch at tens of dispatches a second)
each request carried one record. The event is still written at once; the
state records of all the webhooks concluding within ``window_s`` then travel
in one request.

What the wait changes: nothing a receiver sees (the POST was made), and
nothing of the order of records (a webhook's state record is still written
only after its event is durable). A command is settled, and its offset may be
committed, only once its state record is durable, as before; so a crash within
the window reads the command again, as a crash between the two writes did.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from services.webhooks.state import DeliveryState

# Commits go out at most every 200 ms (``committing.py``): a window well under
# that keeps them as frequent as before.
WINDOW_S = 0.05


class StateWrites:
    def __init__(
        self,
        write: Callable[[list[DeliveryState]], Awaitable[None]],
        window_s: float = WINDOW_S,
    ) -> None:
        self._write = write
        self._window_s = window_s
        # Each webhook once: a later state of it replaces an earlier one not
        # yet written (the topic is compacted; only the last counts anyway).
        self._batch: dict[uuid.UUID, DeliveryState] = {}
        self._written: asyncio.Future[None] | None = None
        self._flushing: set[asyncio.Task[None]] = set()

    async def record(self, state: DeliveryState) -> None:
        """Return once a batch holding ``state`` is durable; raise what the
        batch's write raised (the caller retries: the state is put again)."""
        self._batch[state.webhook_id] = state
        written = self._written
        if written is None:
            written = self._written = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._write_after_window(written))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)
        # Shielded: one caller cancelled must not fail the batch for the others.
        await asyncio.shield(written)

    async def _write_after_window(self, written: asyncio.Future[None]) -> None:
        try:
            await asyncio.sleep(self._window_s)
            batch = list(self._batch.values())
            self._batch = {}
            self._written = None
            await self._write(batch)
        except asyncio.CancelledError:
            # Shutting down: the callers see their write cancelled.
            if self._written is written:
                self._written = None
            written.cancel()
            raise
        except Exception as exc:
            written.set_exception(exc)
            # Retrieved here so a batch whose callers all went away does not
            # log "exception never retrieved"; each caller still gets it.
            written.exception()
        else:
            written.set_result(None)
