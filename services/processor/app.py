"""The processor, wired: faust's app, the fold, the ticker.

One agent (``concurrency=1``: higher concurrency can commit past an event still
in flight, faust-streaming #606) folds ``dispatch.events`` in batches
(``folding.py``); a timer on every worker appends a ``Tick`` to each partition
it folds that has a deadline due (``tick_schedule.py``). Everything that
touches faust's or aiokafka's internals is in ``runtime/``.

faust hands the agent one event per fetch and partition, holding that fetch's
records (``runtime/intake.py``), and the agent takes up to ``BATCH_MAX_FETCHES``
of them at a time (``runtime/batches.py``). A batch's offsets are acknowledged
only after its outputs and table writes have been handed to the producer, and
faust commits an offset only after flushing its producer, so a committed
offset always has its outputs and table writes in Kafka before it. An idle
processor folds batches of one record; a busy one writes each dispatch,
deadline counter and cursor once per batch.

The processor's own decisions come back to it on ``dispatch.events``; they are
marked with a header and skipped unread, because each was folded into the
state when it was taken (the engine is tested without echoes, and with them
as no-ops). They are left out as a fetch's records are gathered.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
from typing import Any

import faust

from events.base import utcnow
from events.codec import encode
from events.dispatch import Tick
from services.processor import metrics
from services.processor.config import ProcessorConfig
from services.processor.folding import Fold
from services.processor.runtime import context
from services.processor.runtime.batches import take_batches
from services.processor.runtime.faust_app import events_topic, make_app, make_tables
from services.processor.runtime.handover import never_commit_past_a_lost_output
from services.processor.runtime.intake import acknowledge_fetched
from services.processor.runtime.watchdog import recovery_silence, watch_recovery

__all__ = ["build_app", "recovery_silence"]

# Most fetches (one partition's records each) folded per batch, and how long
# an unfilled batch waits for more once its first has come.
BATCH_MAX_FETCHES = 16
BATCH_WITHIN_S = 0.002


def build_app(config: ProcessorConfig) -> faust.App:
    events = config.kafka.topics.events
    batch_in_progress = asyncio.Lock()
    app = make_app(config, batch_in_progress)
    topic = events_topic(app, config)

    def lost_output(future: Any) -> None:
        if not future.cancelled() and future.exception() is not None:
            # Never let an offset be committed past a lost output: leave at
            # once, before faust's next commit, so the batch is read again.
            context.exit_now(70, "an output was not delivered, exiting: %r", future.exception())

    fold = Fold(
        config,
        make_tables(app, config),
        is_active=lambda partition: context.is_active(app, events, partition),
        on_lost_output=lost_output,
    )

    @app.agent(topic, concurrency=1)
    async def folder(stream: Any) -> None:
        started = False
        generation = None
        async for batch in take_batches(stream, BATCH_MAX_FETCHES, within=BATCH_WITHIN_S):
            if context.generation(app) != generation:
                generation = context.generation(app)
                fold.new_generation(generation)
            if not started:
                # Once the changelogs exist (faust creates them while
                # recovering, before the first batch): asking for a topic that
                # does not exist yet logs an error for each.
                await fold.start(await context.kafka_producer(app))
                started = True
                # Everything made while starting (faust, aiokafka, the tables)
                # lives as long as the worker: kept out of the cyclic GC's full
                # collections, which would otherwise walk it each time.
                gc.collect()
                gc.freeze()
            try:
                async with batch_in_progress:
                    folded = await fold.fold(batch)
                    for event in batch:
                        acknowledge_fetched(app.consumer, event.message)
                        # The last offset too (faust would at the next batch),
                        # so that a commit between two batches covers this one.
                        app.consumer.ack(event.message)
            except BaseException as exc:
                # faust acks a batch however its body ends (and commits on its
                # way out): leave before that, unflushed, so that the batch is
                # read again and re-decided, whether stopping or failing.
                stopping = isinstance(exc, asyncio.CancelledError)
                if not stopping:
                    logging.getLogger("dispatch.processor").exception("the batch failed")
                context.exit_now(
                    0 if stopping else 70,
                    "left in the middle of a batch; it will be read again",
                    level=logging.INFO if stopping else logging.CRITICAL,
                )
            metrics.BATCH_SIZE.observe(folded)
            metrics.count_processed(fold.processed)
            fold.processed.clear()

    @app.timer(interval=config.tick_interval_s)
    async def ticker() -> None:
        # Time enters the log as events, so replaying the log replays every
        # timeout. Each worker ticks the partitions it folds, when one of
        # their deadlines has come (see ``tick_schedule.py``).
        fold.tick_schedule.generation(context.generation(app))
        now = utcnow()
        due = fold.tick_schedule.due(
            context.folded_partitions(app, events), math.floor(now.timestamp())
        )
        for partition in due:
            await topic.send(
                key=None, value=encode(Tick(partition=partition, now=now)), partition=partition
            )

    never_commit_past_a_lost_output(fold.outputs_lost)
    watch_recovery(app, config.recovery_stall_s)
    del folder, ticker
    return app
