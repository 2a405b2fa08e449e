"""How fast a faust agent takes in queued events: by broker fetch wait, and
by how the processor's own decisions are dropped.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_faust_intake.py \\
        [--events 100000] [--waits 1500,100]

Fills one partition with ``--events`` events marked as the processor's own
decisions and one unmarked last event, then for each fetch wait runs a faust
worker (the processor's settings) whose agent counts what reaches it:

- ``deliver``: a plain faust topic, every event reaches the agent;
- ``skip``: marked events are dropped while faust decodes them, one by one
  (how the previous revision of the processor did it);
- ``gather``: the processor's intake (``services/processor/runtime/intake.py``): a
  fetch's records of the partition reach the agent as one faust message,
  marked ones left out by their header.

1,500 ms is the wait faust itself passes to aiokafka; the processor uses 100.
Each line gives events/s from the first event decoded to the last one, and
the worker's CPU per event over the same span.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faust_bare import processor_like_app, run_worker  # beside this script

from services.kafka import (
    KafkaSettings,
    make_producer,
)
from services.processor.runtime.intake import (
    ORIGIN_HEADER,
    EventsTopic,
    FetchedRecords,
    gather_fetches,
    shorten_fetch_wait,
)

LAST = b"last"


def decode_skipping_topic() -> Any:
    """A faust topic that refuses marked messages while decoding them (faust
    acknowledges a message refused there)."""
    import faust
    from faust.exceptions import ValueDecodeError

    class OwnDecision(ValueDecodeError):
        pass

    class DecodeSkippingTopic(faust.Topic):
        def _compile_decode(self) -> None:
            super()._compile_decode()
            decode = self.decode

            async def skip(message: Any, *, propagate: bool = False) -> Any:
                if message.headers and ORIGIN_HEADER in message.headers:
                    raise OwnDecision()
                return await decode(message, propagate=propagate)

            self.decode = skip  # type: ignore[method-assign]

        async def on_value_decode_error(self, exc: Exception, message: Any) -> None:
            if not isinstance(exc, OwnDecision):
                await super().on_value_decode_error(exc, message)

    return DecodeSkippingTopic


def worker(topic: str, mode: str, wait_ms: int, events: int) -> None:
    import faust

    if wait_ms != 1500:  # 1,500: faust's own constant, left alone
        shorten_fetch_wait(wait_ms)
    app = processor_like_app(f"intake-{topic}-{mode}-{wait_ms}")
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "value_serializer": "raw"}
    clock: dict[str, float] = {}
    if mode == "gather":
        gather_fetches(topic)
    base: Any = {"skip": decode_skipping_topic(), "gather": EventsTopic}.get(mode, faust.Topic)

    class Timed(base):  # type: ignore[misc, valid-type]
        """Starts the clock at the first message faust decodes."""

        def _compile_decode(self) -> None:
            super()._compile_decode()
            decode = self.decode

            async def timed(message: Any, *, propagate: bool = False) -> Any:
                if not clock:
                    clock.update(wall=time.perf_counter(), cpu=time.process_time())
                return await decode(message, propagate=propagate)

            self.decode = timed

    source = Timed(app, topics=[topic], **raw)

    @app.agent(source, concurrency=1)
    async def count(stream: Any) -> None:
        async for batch in stream.take_events(1000, within=0.002):
            for event in batch:
                value = event.value
                if isinstance(value, FetchedRecords):
                    value = value.records[-1].value if value.records else None
                if value == LAST:
                    wall = time.perf_counter() - clock["wall"]
                    cpu = time.process_time() - clock["cpu"]
                    print(
                        f"RESULT {events / wall:,.0f} events/s, "
                        f"{cpu / events * 1e6:.0f} us CPU per event",
                        flush=True,
                    )
                    os._exit(0)

    del count
    run_worker(app)


async def fill(settings: KafkaSettings, topic: str, events: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    await admin.close()
    producer = make_producer(settings, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        value = b"x" * 300  # about the size of a decision
        futures = [
            await producer.send(topic, value, key=b"k", headers=[ORIGIN_HEADER])
            for _ in range(events)
        ]
        futures.append(await producer.send(topic, LAST, key=b"k"))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--waits", default="1500,100")
    parser.add_argument("--worker", nargs=3, metavar=("TOPIC", "MODE", "WAIT_MS"))
    args = parser.parse_args()
    if args.worker:
        topic, mode, wait_ms = args.worker
        worker(topic, mode, int(wait_ms), args.events)
        return
    settings = KafkaSettings(bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    topic = f"bench-intake-{uuid.uuid4().hex[:6]}"
    asyncio.run(fill(settings, topic, args.events))
    print(f"{args.events} queued events on one partition")
    for wait_ms in (int(w) for w in args.waits.split(",")):
        for mode in ("deliver", "skip", "gather"):
            command = [sys.executable, __file__, "--events", str(args.events)]
            run = subprocess.run(
                [*command, "--worker", topic, mode, str(wait_ms)],
                capture_output=True,
                text=True,
                timeout=900,
            )
            # faust routes a worker's stdout into its log (stderr): find the line.
            output = (run.stdout + run.stderr).splitlines()
            result = [line for line in output if "RESULT " in line]
            figure = result[0].split("RESULT ", 1)[1].strip() if result else run.stderr[-2000:]
            print(f"  fetch wait {wait_ms:>5} ms, {mode:7}: {figure}")


if __name__ == "__main__":
    main()
