"""The processor's tables on RocksDB, as it runs in production (the other unit
tests use ``memory://``): the engine folds into write-back caches over the
partition's RocksDB, the writes go through the TableWriter, and a processor
restarted on the kept data directory reads the state, the deadline index and
the changelog offsets back, and fails over exactly as one that never stopped."""

from __future__ import annotations

import asyncio
import gc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from events.commands import SendMessage
from services.processor import timers
from services.processor.app import build_app
from services.processor.config import TABLES, ProcessorConfig
from services.processor.engine import Stores
from services.processor.runtime.changelog import TableWriter, table_reader
from services.processor.runtime.outbox import Outbox
from services.processor.writeback import WriteBack
from tests.unit.processor.harness import Harness
from tests.unit.processor.test_outbox import FakeProducer

PARTITION = 0  # the harness folds everything on partition 0


class RocksDBProcessor:
    """The processor's three tables on RocksDB under ``data_dir``, wired as
    ``build_app`` wires them (reader, write-back cache, TableWriter)."""

    def __init__(self, data_dir: Path) -> None:
        self.app = build_app(ProcessorConfig(store="rocksdb://", data_dir=data_dir))
        self.tables = [self.app.tables[name] for name in TABLES]
        self.caches = [WriteBack(table_reader(table)) for table in self.tables]
        for cache in self.caches:
            cache.partition = PARTITION
        self.outbox = Outbox(FakeProducer(), lambda _: None)
        self.writers = [TableWriter(table, self.outbox) for table in self.tables]
        buckets, cursors, dispatches = self.caches
        self.stores = Stores(buckets=buckets, cursors=cursors, dispatches=dispatches)

    async def flush(self) -> None:
        """What the processor does after each batch: write the changes through,
        send their changelog records, record the offsets acknowledged."""
        for cache, writer in zip(self.caches, self.writers, strict=True):
            await writer.write(PARTITION, cache.take(PARTITION))
        await self.outbox.send_all()
        # The fake broker acknowledges at once; the acknowledgements' callbacks
        # (which record the offsets) run on the loop's next turn: one yield,
        # not a wait for time to pass.
        await asyncio.sleep(0)

    def persisted_offsets(self) -> list[int | None]:
        return [
            table.data.persisted_offset(TP(table.changelog_topic.get_topic_name(), PARTITION))
            for table in self.tables
        ]

    def files(self) -> list[Path]:
        return [Path(table.data.partition_path(PARTITION)) for table in self.tables]

    async def stop(self) -> None:
        for table in self.tables:
            await table.data.stop()
        self.tables.clear()
        self.caches.clear()
        self.writers.clear()
        del self.stores, self.app
        gc.collect()  # faust's store releases its databases when they are collected
        # A restarted process starts with none of the parsed timer cursors.
        timers.forget_cached_cursors()


@pytest.fixture
def harness() -> Iterator[Harness]:
    timers.forget_cached_cursors()
    yield Harness()
    timers.forget_cached_cursors()


def on(processor: RocksDBProcessor, harness: Harness) -> Harness:
    harness.stores = processor.stores
    return harness


async def test_a_processor_restarted_on_its_rocksdb_fails_over_as_if_it_never_stopped(
    tmp_path: Path, harness: Harness
) -> None:
    first = RocksDBProcessor(tmp_path)
    h = on(first, harness)
    dispatch = h.request(steps=2, expiry=60)
    h.submitted(dispatch, 0)
    await first.flush()
    offsets = first.persisted_offsets()
    assert all(offset is not None for offset in offsets)  # every table was written
    assert all(path.is_dir() for path in first.files())
    state_before = h.state(dispatch)
    await first.stop()

    second = RocksDBProcessor(tmp_path)
    h = on(second, harness)
    # Read back from disk: the dispatch, and where a restore would resume.
    assert h.state(dispatch) == state_before
    assert second.persisted_offsets() == offsets
    # The deadline index survived too: the timer armed before the restart
    # fires after it, and the dispatch fails over to its second step.
    fired = h.tick(seconds_later=61)
    await second.flush()
    assert [o.step for o in fired if isinstance(o, SendMessage)] == [1]
    assert h.state(dispatch).steps[0].timed_out
    await second.stop()


async def test_rocksdb_and_memory_tables_take_the_same_decisions(tmp_path: Path) -> None:
    dispatch = uuid.uuid4()

    def script(h: Harness) -> list[Any]:
        h.request(steps=3, expiry=60, dispatch=dispatch)
        h.submitted(dispatch, 0)
        h.tick(seconds_later=61)
        h.status(dispatch, h.submitted(dispatch, 1), "delivered")
        return h.outputs

    timers.forget_cached_cursors()
    in_memory = script(Harness())
    timers.forget_cached_cursors()
    processor = RocksDBProcessor(tmp_path)
    on_rocksdb = script(on(processor, Harness()))
    await processor.flush()
    assert on_rocksdb == in_memory
    await processor.stop()
