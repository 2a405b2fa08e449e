"""A minimal faust app for the dependency smoke test: it counts events per key
in a changelog-backed RocksDB table and prints the table once a second."""

from __future__ import annotations

import os

import faust
import orjson

app = faust.App(
    os.environ["COUNTER_APP_ID"],
    broker=f"kafka://{os.environ['KAFKA_BOOTSTRAP']}",
    store="rocksdb://",
    datadir=os.environ["COUNTER_DATA_DIR"],
    topic_partitions=2,
    web_enabled=False,
    broker_commit_every=1,
    broker_commit_interval=0.5,
)
source = app.topic(
    os.environ["COUNTER_TOPIC"], partitions=2, key_serializer="raw", value_serializer="raw"
)
counts = app.Table("counts", default=int, partitions=2)


@app.agent(source, concurrency=1)
async def count(stream: faust.StreamT) -> None:
    async for event in stream.events():
        counts[event.key.decode()] += 1


@app.timer(interval=0.5)
async def report() -> None:
    print(
        "TABLE " + orjson.dumps(dict(counts.items()), option=orjson.OPT_SORT_KEYS).decode(),
        flush=True,
    )
