"""The processor's own table writes produce what faust's would: the same bytes
in the partition's RocksDB and on the changelog (which faust restores from),
and the store's persisted offset once the broker has the records."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faust.streams import _current_event
from faust.types import TP

from services.processor.app import build_app
from services.processor.config import ProcessorConfig
from services.processor.runtime.changelog import TableWriter, key_encoder, table_reader, value_codec
from services.processor.runtime.outbox import Outbox
from tests.unit.processor.test_outbox import FakeProducer

PARTITION = 2


class Event:
    """What faust's store asks of the current event: its partition."""

    class Message:
        partition = PARTITION

    message = Message()


@pytest.fixture
def table(tmp_path: Path) -> Iterator[Any]:
    app = build_app(ProcessorConfig(store="rocksdb://", data_dir=tmp_path))
    event = Event()
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    yield app.tables["dispatches"]
    _current_event.reset(token)


async def test_writes_reach_the_store_and_the_changelog_as_faust_would_write_them(
    table: Any,
) -> None:
    producer = FakeProducer()
    writer = TableWriter(table, Outbox(producer, lambda _: None))
    store = table.data
    await writer.write(PARTITION, [("dispatch-a", b'{"step": 1}'), ("dispatch-b", b"{}")])
    await writer.write(PARTITION, [("dispatch-b", None)])
    await writer._outbox.send_all()

    # The store holds the values, read back through faust's own path.
    assert store["dispatch-a"] == b'{"step": 1}'
    assert "dispatch-b" not in store
    # The changelog records are the bytes faust's own changelog send makes (the
    # bytes its restore copies into the store), on the partition's changelog
    # partition, in write order; a deletion is a tombstone.
    topic = table.changelog_topic
    faust_key, _ = topic.prepare_key("dispatch-a", table.key_serializer, None, None)
    faust_value, _ = topic.prepare_value(b'{"step": 1}', table.value_serializer, None, None)
    ((name, partition, records),) = producer.sent
    assert (name, partition) == (topic.get_topic_name(), PARTITION)
    assert records[0] == (faust_key, faust_value)
    assert [value for _, value in records] == [faust_value, b"{}", None]
    # Where a restore resumes: the last record's offset, once acknowledged.
    await asyncio.sleep(0)  # the batch's callbacks
    assert store.persisted_offset(TP(topic.get_topic_name(), PARTITION)) == 2


async def test_the_reader_reads_what_was_written_in_that_partitions_store(table: Any) -> None:
    writer = TableWriter(table, Outbox(FakeProducer(), lambda _: None))
    await writer.write(PARTITION, [("dispatch-a", b'{"step": 1}')])
    read = table_reader(table)
    assert read("dispatch-a", PARTITION) == b'{"step": 1}'
    assert read("dispatch-a", PARTITION + 1) is None  # another partition's store
    assert read("dispatch-b", PARTITION) is None


def test_keys_and_values_are_encoded_exactly_as_faust_encodes_them(table: Any) -> None:
    store = table.data
    encode_key = key_encoder(store)
    encode_value, decode_value = value_codec(store)
    keys = ["e380137b-7d58-4af8-9867-8f902fe826d9", "3:1795838006:12", "0:fired:42:0", 'a"b\\ü']
    for key in keys:
        assert encode_key(key) == store._encode_key(key)
    value = b'{"steps":[],"last_offset":7}'
    assert encode_value(value) == store._encode_value(value)
    assert decode_value(value) == store._decode_value(value)
