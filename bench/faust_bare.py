"""A bare faust agent, the ceiling for any faust processor on this machine:
the processor's faust settings (fetch wait included) and batching, no tables, no engine; every
event read is written unchanged to ``<topic>.faust-out``.

    python bench/faust_bare.py TOPIC PARTITIONS   (bench_processor.py runs it)
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import faust

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.processor.runtime.intake import shorten_fetch_wait


def processor_like_app(app_id: str, partitions: int = 1) -> faust.App:
    """A faust app with the processor's consumer and producer settings, no tables."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    return faust.App(
        app_id,
        broker=[f"kafka://{server}" for server in bootstrap.split(",")],
        datadir=tempfile.mkdtemp(prefix="faust-bench-"),
        topic_partitions=partitions,
        web_enabled=False,
        producer_acks=-1,
        producer_linger=0.005,
        stream_wait_empty=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
    )


def run_worker(app: faust.App) -> None:
    logging.basicConfig(level=logging.WARNING)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.spinner = None
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker.execute_from_commandline()


def main() -> None:
    topic_name, partitions = sys.argv[1], int(sys.argv[2])
    shorten_fetch_wait()  # as the processor does (see its intake.py)
    app = processor_like_app(f"faust-bare-{topic_name}", partitions)
    source = app.topic(topic_name, key_type=bytes, value_type=bytes, value_serializer="raw")
    out = f"{topic_name}.faust-out"

    @app.agent(source, concurrency=1)
    async def copy(stream: Any) -> None:
        async for batch in stream.take_events(1000, within=0.002):
            for event in batch:
                await app.producer.send(out, event.key, event.value, None, None, None)

    del copy
    run_worker(app)


if __name__ == "__main__":
    main()
