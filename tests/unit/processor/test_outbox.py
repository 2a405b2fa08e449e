"""The outbox places records where aiokafka's ``send`` would, keeps their order
per partition, and hands every batch to the producer."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from services.processor.runtime.outbox import Outbox


class FakeProducer:
    """create_batch / send_batch / partitions_for, recording what is sent."""

    def __init__(self, batch_size: int = 16384) -> None:
        self.batch_size = batch_size
        self.sent: list[tuple[str, int, list[tuple[bytes | None, bytes]]]] = []
        self.log_end: dict[tuple[str, int], int] = {}

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0, is_transactional=False)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any:
        records = [(r.key, r.value) for r in DefaultRecordBatch(bytes(batch._build()))]
        self.sent.append((topic, partition, records))
        # Resolves as aiokafka's does: with the batch's first offset.
        base = self.log_end.get((topic, partition), 0)
        self.log_end[(topic, partition)] = base + len(records)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(offset=base))
        return future

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2} if topic.endswith("three") else {0, 1, 2, 3}


async def test_keyed_records_go_where_the_default_partitioner_puts_them() -> None:
    producer = FakeProducer()
    outbox = Outbox(producer, lambda _: None)
    keys = [f"dispatch-{n}".encode() for n in range(20)]
    for topic in ("t.send", "t.three"):  # a key placed before, on another topic
        for key in keys:
            await outbox.add(topic, key, b"v-" + key)
    await outbox.send_all()
    for topic, partitions in (("t.send", [0, 1, 2, 3]), ("t.three", [0, 1, 2])):
        placed = {k: p for t, p, records in producer.sent for k, _ in records if t == topic}
        expected = {key: DefaultPartitioner()(key, partitions, partitions) for key in keys}
        assert placed == expected


async def test_order_is_kept_per_partition_across_full_batches() -> None:
    producer = FakeProducer(batch_size=1024)
    delivered: list[object] = []
    outbox = Outbox(producer, delivered.append)
    values = [f"{n:04d}".encode() * 40 for n in range(60)]  # 160 bytes each
    for value in values:
        await outbox.add("t.events", b"k", value, partition=2, headers=[("h", b"1")])
    assert len(producer.sent) > 1  # batches went out as they filled
    await outbox.send_all()
    assert {(t, p) for t, p, _ in producer.sent} == {("t.events", 2)}
    assert [v for _, _, records in producer.sent for _, v in records] == values
    await asyncio.sleep(0)
    assert len(delivered) == len(producer.sent)  # every batch has the callback


async def test_a_record_larger_than_a_batch_still_goes() -> None:
    producer = FakeProducer(batch_size=256)
    outbox = Outbox(producer, lambda _: None)
    await outbox.add("t.webhooks", b"k", b"small", partition=0)
    await outbox.add("t.webhooks", b"k", b"x" * 5000, partition=0)
    await outbox.send_all()
    assert [len(v) for _, _, records in producer.sent for _, v in records] == [5, 5000]


async def test_a_watched_topic_reports_each_batch_s_last_offset_once_written() -> None:
    producer = FakeProducer(batch_size=1024)
    outbox = Outbox(producer, lambda _: None)
    written: list[tuple[int, int]] = []
    outbox.watch("t.changelog", lambda partition, offset: written.append((partition, offset)))
    for n in range(30):
        await outbox.add("t.changelog", b"key-%d" % n, b"v" * 100, partition=n % 2)
    await outbox.add("t.other", b"k", b"v", partition=0)
    await outbox.send_all()
    await asyncio.sleep(0)
    # One report per batch of the watched topic, the last reaching each log end.
    batches = [(p, len(records)) for t, p, records in producer.sent if t == "t.changelog"]
    assert len(written) == len(batches) > 2
    for partition in (0, 1):
        assert max(o for p, o in written if p == partition) == 14  # 15 records each


class AnsweringLater(FakeProducer):
    """Hands back each batch's future unanswered, for the test to answer."""

    def __init__(self) -> None:
        super().__init__()
        self.futures: list[asyncio.Future[Any]] = []

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        self.sent.append((topic, partition, []))
        return future


async def test_a_batch_that_failed_is_known_lost_before_its_callbacks_run() -> None:
    # What the commit guard asks right after the producer's flush: the batch's
    # callbacks (the one that exits included) have not run yet at that point.
    producer = AnsweringLater()
    outbox = Outbox(producer, lambda _: None)
    await outbox.add("t.events", b"k", b"decided", 0)
    await outbox.add("t.send", b"k", b"send it", 0)
    await outbox.send_all()
    assert outbox.lost() is None  # nothing answered yet
    delivered, failed = producer.futures
    delivered.set_result(SimpleNamespace(offset=0))
    failed.set_exception(OSError("the broker went away"))
    lost = outbox.lost()  # no loop turn in between
    assert isinstance(lost, OSError)


async def test_delivered_batches_are_not_kept() -> None:
    producer = FakeProducer()
    outbox = Outbox(producer, lambda _: None)
    for n in range(10):
        await outbox.add("t.events", b"k", f"{n}".encode(), n % 4)
    await outbox.send_all()
    await asyncio.sleep(0)  # the done callbacks
    assert outbox.lost() is None
    assert not outbox._in_flight
