"""The message index waits briefly for a MessageSubmitted that is not read yet,
and answers "unknown" within its bound for a uuid that never was submitted."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from events.codec import encode
from events.dispatch import MessageSubmitted
from services.inbound.index import MessageIndex
from services.kafka import KafkaSettings, make_producer

pytestmark = pytest.mark.kafka


async def test_lookup_waits_for_a_submission_still_on_its_way(
    kafka_settings: KafkaSettings,
) -> None:
    producer = make_producer(kafka_settings)
    await producer.start()
    index = MessageIndex(kafka_settings)
    await index.start()
    try:
        await index.wait_caught_up(timeout=20)
        dispatch = uuid.uuid4()
        submitted = MessageSubmitted(
            dispatch_uuid=dispatch, step=3, command_id=uuid.uuid4(), message_uuid="m-late"
        )
        # The lookup starts first (and reads the log end); the event lands a
        # moment later, as when the provider's callback beats the sender's append.
        lookup = asyncio.create_task(index.lookup("m-late", wait=5))
        await asyncio.sleep(0.2)
        await producer.send_and_wait(
            kafka_settings.topics.events, encode(submitted), key=str(dispatch).encode()
        )
        ref = await lookup
        assert ref is not None
        assert (ref.dispatch_uuid, ref.step) == (dispatch, 3)

        started = time.monotonic()
        assert await index.lookup("never-submitted", wait=5) is None
        # "Unknown" as soon as the log end is reached, not after the full wait.
        assert time.monotonic() - started < 3
    finally:
        await index.stop()
        await producer.stop()


async def test_a_lookup_answers_as_soon_as_the_late_submission_is_read(
    kafka_settings: KafkaSettings,
) -> None:
    # A provider's callback that beats the sender's append must not wait out
    # the whole settle time once the submission has been read: every status
    # webhook and final report of that dispatch would be that much later.
    producer = make_producer(kafka_settings)
    await producer.start()
    index = MessageIndex(kafka_settings, settle_s=4.0)
    await index.start()
    try:
        await index.wait_caught_up(timeout=20)
        dispatch = uuid.uuid4()
        submitted = MessageSubmitted(
            dispatch_uuid=dispatch, step=0, command_id=uuid.uuid4(), message_uuid="m-racing"
        )
        started = time.monotonic()
        lookup = asyncio.create_task(index.lookup("m-racing", wait=10))
        await asyncio.sleep(0.2)
        await producer.send_and_wait(
            kafka_settings.topics.events, encode(submitted), key=str(dispatch).encode()
        )
        ref = await lookup
        assert ref is not None and ref.dispatch_uuid == dispatch
        assert time.monotonic() - started < 2.0  # well before the 4 s settle time
    finally:
        await index.stop()
        await producer.stop()


async def test_a_fresh_index_knows_what_was_submitted_before_it_started(
    kafka_settings: KafkaSettings,
) -> None:
    producer = make_producer(kafka_settings)
    await producer.start()
    try:
        dispatch = uuid.uuid4()
        await producer.send_and_wait(
            kafka_settings.topics.events,
            encode(
                MessageSubmitted(
                    dispatch_uuid=dispatch, step=0, command_id=uuid.uuid4(), message_uuid="m-old"
                )
            ),
            key=str(dispatch).encode(),
        )
    finally:
        await producer.stop()
    index = MessageIndex(kafka_settings)
    await index.start()
    try:
        ref = await index.lookup("m-old", wait=10)
        assert ref is not None and ref.dispatch_uuid == dispatch
    finally:
        await index.stop()
