"""What the processor asks of a running faust app, and the one way it leaves.

faust internals touched (pinned by ``tests/unit/processor/test_runtime_contract.py``):
``faust.streams._current_event`` (the context variable a table reads its
event's partition from), ``App.producer._ensure_producer`` (the aiokafka
producer faust's commit flushes), ``App.consumer_generation_id``,
``App.assignor.assigned_actives``.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, cast

import faust
from aiokafka import AIOKafkaProducer
from faust.streams import _current_event
from faust.types import TP, EventT


@contextmanager
def current(event: EventT) -> Iterator[None]:
    """Make ``event`` the current one: a faust table reads and writes the
    store (and changelog partition) of the current event, which faust sets
    only for a stream's latest."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def generation(app: faust.App) -> int:
    """The consumer group generation this worker is in (changes on a rebalance)."""
    return int(app.consumer_generation_id)


def is_active(app: faust.App, topic: str, partition: int) -> bool:
    """Whether this worker owns ``partition`` of ``topic`` (not a standby copy)."""
    return TP(topic, partition) in app.assignor.assigned_actives()


def folded_partitions(app: faust.App, topic: str) -> list[int]:
    """The partitions of ``topic`` this worker owns."""
    return [tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic]


async def kafka_producer(app: faust.App) -> AIOKafkaProducer:
    """faust's own aiokafka producer, started: the one its commit flushes
    before committing, so outputs sent through it are in Kafka first."""
    await app.producer.maybe_start()
    return cast(AIOKafkaProducer, cast(Any, app.producer)._ensure_producer())


def exit_now(code: int, message: str, *args: object, level: int = logging.CRITICAL) -> NoReturn:
    """Leave at once, without faust's shutdown (which acknowledges and commits
    what is in hand): what was not finished is read again by whoever owns its
    partition next."""
    logging.getLogger("dispatch.processor").log(level, message, *args)
    logging.shutdown()
    os._exit(code)
