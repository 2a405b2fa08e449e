"""Sends/s through the real sender to the simulator answering with 50 ms latency,
beside a plain httpx loop with the same concurrency against the same simulator.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_sender.py [--sends N]

The sender's figure covers the whole path: commands produced to dispatch.send,
consumed, a ledger intent (acks=all), the HTTP call, the ledger outcome
(acks=all), the outcome event on dispatch.events, read back by this script.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import httpx
import uvloop
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.codec import encode
from events.codec import to_json as encode_json
from events.commands import SendMessage
from events.topics import Topics
from services.kafka import KafkaSettings, ensure_topics, make_producer
from tests.conftest import kafka_env
from tests.processes import Process, free_port


def _message(i: int) -> dict[str, object]:
    return {
        "from": {"type": "sms", "number": "447700900999"},
        "to": {"type": "sms", "number": f"4477009{i % 100000:05d}1"},  # digit 1: accepted
        "message": {"content": {"type": "text", "text": "bench"}},
    }


async def plain_loop(base_url: str, sends: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        queue = iter(range(sends))

        async def worker() -> None:
            for i in queue:
                body = {**_message(i), "client_ref": f"plain-{i}"}
                response = await client.post(f"{base_url}/v0.1/messages", json=body)
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return sends / (time.perf_counter() - started)


async def plain_aiohttp_loop(base_url: str, sends: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(range(sends))

        async def worker() -> None:
            for i in queue:
                body = encode_json({**_message(i), "client_ref": f"aiohttp-{i}"})
                async with session.post(
                    f"{base_url}/v0.1/messages",
                    data=body,
                    headers={"content-type": "application/json"},
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response:
                    response.raise_for_status()
                    await response.read()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return sends / (time.perf_counter() - started)


async def through_sender(settings: KafkaSettings, sends: int) -> float:
    consumer = AIOKafkaConsumer(
        settings.topics.events,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    producer = make_producer(settings, linger_ms=5)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = []
        for i in range(sends):
            command = SendMessage(
                dispatch_uuid=uuid.uuid4(), application_id="bench", step=0, message=_message(i)
            )
            futures.append(
                await producer.send(
                    settings.topics.send, encode(command), key=str(command.dispatch_uuid).encode()
                )
            )
        await asyncio.gather(*futures)
        seen = 0
        while seen < sends:
            batch = await consumer.getmany(timeout_ms=1000)
            seen += sum(len(records) for records in batch.values())
            if time.perf_counter() - started > 120:
                raise RuntimeError(f"only {seen} of {sends} outcomes after 120 s")
        return sends / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await consumer.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=50)
    args = parser.parse_args()

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = KafkaSettings(
        bootstrap_servers=bootstrap, partitions=8, topics=Topics.from_prefix(prefix)
    )
    await ensure_topics(settings)

    log_dir = Path(tempfile.mkdtemp(prefix="bench-sender-"))
    port = free_port()
    simulator = Process(
        "simulator",
        ["dispatch-simulator"],
        {"SIMULATOR_PORT": str(port), "SIMULATOR_LATENCY_MS": str(args.latency_ms)},
        log_dir,
    )
    sender: Process | None = None
    try:
        simulator.wait_for_port(port)
        base_url = f"http://127.0.0.1:{port}"
        plain = await plain_loop(base_url, args.sends, args.concurrency)
        plain_aiohttp = await plain_aiohttp_loop(base_url, args.sends, args.concurrency)

        sender = Process(
            "sender",
            ["dispatch-sender"],
            {
                **kafka_env(settings),
                "PROVIDER_BASE_URL": base_url,
                "PROVIDER_AUTH": "none",
                "SENDER_CONCURRENCY": str(args.concurrency),
            },
            log_dir,
        )
        sender.wait_for_log("sender assigned", timeout=60)
        via_sender = await through_sender(settings, args.sends)
    finally:
        if sender is not None:
            sender.stop()
        simulator.stop()

    print(
        f"sends={args.sends} concurrency={args.concurrency} latency={args.latency_ms:g}ms\n"
        f"plain httpx loop   : {plain:8.0f} sends/s\n"
        f"plain aiohttp loop : {plain_aiohttp:8.0f} sends/s\n"
        f"through sender     : {via_sender:8.0f} sends/s "
        f"({via_sender / plain:.0%} of plain httpx, "
        f"{via_sender / plain_aiohttp:.0%} of plain aiohttp)"
    )


if __name__ == "__main__":
    uvloop.run(main())
