"""The records an attempt leaves, written a batch at a time.

An attempt that concludes leaves up to two records: its outcome event on
``dispatch.events`` (the history; none for a failed attempt that is not
recorded, see ``outcomes.py``) and its state record on the deliverer's state
topic (none once its partition has moved to another deliverer). The state
record says the outcome is in the history, so it is written only after the
event is durable, never with it.

Written one after the other for each webhook, that was two produce requests a
webhook, each carrying one record under a trickle (three webhooks a dispatch
at tens of dispatches a second). Now each write, made every ``window_s`` while
anything waits, carries the events of the attempts concluded since the last
one and the state records of the attempts whose events the last one made
durable: one produce request for both topics when one broker leads them.

What the wait changes: nothing a receiver sees (the POST was made, and final
reports held back for a status are released when the status was attempted,
not when it was recorded) and nothing of the order of a webhook's records. A
command is settled, and its offset may be committed, only once its state
record is durable, as before; a crash before that reads the command again, as
a crash between the two writes did.

A failed write is retried with backoff, keeping what it carried (a broker
restart is waited out here, as each write used to be); stopping ends the wait,
and what is not durable by then is reported as not recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from services.producer import WRITE_ERRORS, ProducerUnavailable, Record
from services.webhooks.state import DeliveryState, encode_state

log = logging.getLogger("services.webhooks.deliverer")

# Offsets are committed at most every 200 ms (``committing.py``): two windows
# (the event's write, then the state's) stay under that.
WINDOW_S = 0.05
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 10.0

# records, and the partition of each (None: by its key)
Write = Callable[[Sequence[Record], Sequence[int | None]], Awaitable[None]]


@dataclass
class _Outcome:
    event: Record | None
    state: DeliveryState | None
    done: asyncio.Future[bool]


class OutcomeWrites:
    def __init__(
        self,
        write: Write,
        *,
        state_topic: str,
        owned: Callable[[int], bool],
        stopping: Callable[[], bool],
        window_s: float = WINDOW_S,
    ) -> None:
        self._write = write
        self._state_topic = state_topic
        self._owned = owned
        self._stopping = stopping
        self._window_s = window_s
        self._events: list[_Outcome] = []  # the event to write first
        self._states: list[_Outcome] = []  # event durable (or none), the state to write
        self._task: asyncio.Task[None] | None = None

    async def record(self, event: Record | None, state: DeliveryState | None) -> bool:
        """True once the event and then the state are durable (either may be
        None); False if the deliverer stopped first."""
        outcome = _Outcome(event, state, asyncio.get_running_loop().create_future())
        (self._events if event is not None else self._states).append(outcome)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write_while_waiting())
        # Shielded: a caller cancelled must not take the others' write with it.
        return await asyncio.shield(outcome.done)

    async def _write_while_waiting(self) -> None:
        retry_s = RETRY_FIRST_S
        try:
            while self._events or self._states:
                await asyncio.sleep(self._window_s)
                self._drop_states_not_owned()
                events, states = list(self._events), list(self._states)
                try:
                    await self._write_once(events, states)
                except (ProducerUnavailable, *WRITE_ERRORS) as exc:
                    if self._stopping():
                        self._end_all(False)
                        return
                    log.warning("could not record webhook outcomes (%s); retrying", exc)
                    await asyncio.sleep(retry_s)
                    retry_s = min(retry_s * 2, RETRY_MAX_S)
                    continue
                retry_s = RETRY_FIRST_S
                # What was recorded meanwhile waits for the next write.
                del self._events[: len(events)]
                del self._states[: len(states)]
                for outcome in events:
                    if outcome.state is None:
                        _end(outcome, True)
                    else:
                        self._states.append(outcome)
                for outcome in states:
                    _end(outcome, True)
        except BaseException as exc:
            self._end_all(exc)
            raise

    async def _write_once(self, events: list[_Outcome], states: list[_Outcome]) -> None:
        records: list[Record] = []
        partitions: list[int | None] = []
        for outcome in events:
            assert outcome.event is not None
            records.append(outcome.event)
            partitions.append(None)
        for outcome in states:
            assert outcome.state is not None
            state = outcome.state
            records.append((self._state_topic, str(state.webhook_id).encode(), encode_state(state)))
            partitions.append(state.source_partition)
        if records:
            await self._write(records, partitions)

    def _drop_states_not_owned(self) -> None:
        # A partition that moved to another deliverer is its business now: a
        # stale state record here could overwrite its newer one.
        for outcome in self._events + self._states:
            if outcome.state is not None and not self._owned(outcome.state.source_partition):
                outcome.state = None
        kept = []
        for outcome in self._states:
            if outcome.state is None:
                _end(outcome, True)
            else:
                kept.append(outcome)
        self._states = kept

    def _end_all(self, result: bool | BaseException) -> None:
        for outcome in self._events + self._states:
            _end(outcome, result)
        self._events, self._states = [], []


def _end(outcome: _Outcome, result: bool | BaseException) -> None:
    if outcome.done.done():
        return
    if isinstance(result, BaseException):
        if isinstance(result, asyncio.CancelledError):
            outcome.done.cancel()
        else:
            outcome.done.set_exception(result)
    else:
        outcome.done.set_result(result)
