"""CPU per record: aiokafka's ``send`` against the processor's outbox
(``services/processor/runtime/outbox.py``, record batches per topic partition).

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_outbox.py [--records 20000]

The same records (600 bytes, keyed, with the processor's origin header) to a
fresh 4-partition topic, acks=all and a 5 ms linger as in the processor;
CPU of this process from the first record to the last acknowledgement.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.processor.runtime.intake import ORIGIN_HEADER
from services.processor.runtime.outbox import Outbox

VALUE = b"x" * 600


async def through_send(producer: AIOKafkaProducer, topic: str, records: int) -> float:
    started = time.process_time()
    futures = [
        await producer.send(topic, VALUE, key=b"k%d" % n, headers=[ORIGIN_HEADER])
        for n in range(records)
    ]
    await asyncio.gather(*futures)
    return time.process_time() - started


async def through_outbox(producer: AIOKafkaProducer, topic: str, records: int) -> float:
    futures: list[asyncio.Future[Any]] = []
    outbox = Outbox(producer, futures.append)
    started = time.process_time()
    for n in range(records):
        await outbox.add(topic, b"k%d" % n, VALUE, headers=[ORIGIN_HEADER])
    await outbox.send_all()
    await asyncio.gather(*futures)
    return time.process_time() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    topic = f"bench-outbox-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 4, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        await producer.send_and_wait(topic, VALUE, key=b"warm-up")
        for name, run in (("send", through_send), ("outbox", through_outbox)):
            cpu = await run(producer, topic, args.records)
            print(f"{name:7} {cpu / args.records * 1e6:5.1f} us CPU per record")
    finally:
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(main())
