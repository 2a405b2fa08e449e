"""Webhook deliveries per second, beside a plain httpx POST loop, in one run.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_webhooks.py --count 5000

Starts a local receiver (its own process) that answers 503 to 20 % of first
attempts, produces ``--count`` DeliverWebhook commands, runs the real
``dispatch-webhooks`` process against them, and measures from the receiver's
first request to the last webhook acknowledged with a 2xx (each webhook counted
once, retries included in the time). Then a plain httpx loop POSTs the same
number of bodies to the same receiver at the same concurrency. Topics get a
fresh prefix and are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import httpx
import orjson

BIN = Path(sys.executable).parent
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from events.applications import ApplicationRegistered  # noqa: E402
from events.base import deterministic_id  # noqa: E402
from events.codec import encode  # noqa: E402
from events.commands import DeliverWebhook  # noqa: E402
from events.topics import Topics  # noqa: E402
from services.kafka import KafkaSettings, ensure_topics, make_producer  # noqa: E402
from services.webhooks.state import state_topic  # noqa: E402

FAIL_SHARE = 0.2


# -- the receiver (runs in its own process) -------------------------------------------
def receiver_app() -> Any:
    seen: set[str] = set()
    stats = {"first": 0.0, "last_ok": 0.0, "ok": 0, "failed": 0}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        path = scope["path"]
        if path == "/stats":
            await _answer(send, 200, orjson.dumps(stats))
            return
        if path == "/reset":
            seen.clear()
            stats.update(first=0.0, last_ok=0.0, ok=0, failed=0)
            await _answer(send, 200, b"{}")
            return
        now = time.time()
        stats["first"] = stats["first"] or now
        headers = dict(scope["headers"])
        webhook_id = headers.get(b"x-dispatch-webhook-id", b"").decode()
        first_attempt = webhook_id and webhook_id not in seen
        if webhook_id:
            seen.add(webhook_id)
        # A fixed 20 % of webhook ids fail their first attempt (crc32 spreads them).
        if first_attempt and zlib.crc32(webhook_id.encode()) % 100 < FAIL_SHARE * 100:
            stats["failed"] += 1
            await _answer(send, 503, b"{}")
            return
        stats["ok"] += 1
        stats["last_ok"] = now
        await _answer(send, 200, b"{}")

    return app


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def run_receiver(port: int) -> None:
    import uvicorn

    uvicorn.run(
        receiver_app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        http="httptools",
        loop="uvloop",
        access_log=False,
    )


# -- the run -----------------------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process used so far (Linux): a figure that holds up
    better than wall-clock rates on a machine shared with other work."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Its own process group, so stopping it stops everything it started.
    return subprocess.Popen(args, env=env, start_new_session=True)


def payload(dispatch: uuid.UUID) -> dict[str, object]:
    return {
        "message_uuid": str(uuid.uuid4()),
        "to": {"type": "sms", "number": "447700900000"},
        "from": {"type": "sms", "number": "447700900001"},
        "timestamp": "2020-01-01T14:00:00.000Z",
        "status": "delivered",
        "usage": {"currency": "EUR", "price": "0.0333"},
        "_links": {"workflow": {"dispatch_uuid": str(dispatch), "href": f"/workflows/{dispatch}"}},
    }


async def wait_until_up(base: str) -> None:
    async with httpx.AsyncClient(timeout=1) as client:
        for _ in range(100):
            try:
                await client.post(f"{base}/stats")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise SystemExit("receiver did not start")


async def stats(client: httpx.AsyncClient, base: str) -> dict[str, float]:
    result: dict[str, float] = (await client.post(f"{base}/stats")).json()
    return result


async def bench_deliverer(
    settings: KafkaSettings, base: str, count: int, in_flight: int
) -> tuple[float, dict[str, float]]:
    app = ApplicationRegistered(
        application_id="bench",
        name="bench",
        api_key="bench",
        api_secret_hash="salt$hash",
        status_url=f"{base}/status",
        final_report_url=f"{base}/final",
        signature_secret="bench-signature-secret-of-32-bytes-or-more",
    )
    producer = make_producer(settings, linger_ms=20)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topics.applications, encode(app), key=b"bench")
        futures = []
        for n in range(count):
            dispatch = uuid.uuid4()
            command = DeliverWebhook(
                event_id=deterministic_id(dispatch, "status", n),
                dispatch_uuid=dispatch,
                application_id="bench",
                kind="status",
                payload=payload(dispatch),
            )
            futures.append(
                await producer.send(
                    settings.topics.webhooks, encode(command), key=str(dispatch).encode()
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()

    prefix = settings.topics.events.removesuffix("dispatch.events")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "DISPATCH_TOPIC_PREFIX": prefix,
        "DISPATCH_PARTITIONS": str(settings.partitions),
        "WEBHOOK_ALLOW_PRIVATE": "1",
        "WEBHOOK_RETRY_INITIAL_S": "0.05",
        "WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT": str(in_flight),
        "LOG_LEVEL": "WARNING",
    }
    argv = [str(BIN / "dispatch-webhooks")]
    if os.environ.get("BENCH_PROFILE"):  # a cProfile dump of the deliverer, for tuning
        argv = [sys.executable, "-m", "cProfile", "-o", os.environ["BENCH_PROFILE"], *argv]
    deliverer = spawn(argv, env)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                got = await stats(client, base)
                if got["ok"] >= count:
                    got["cpu_s"] = cpu_seconds(deliverer.pid)
                    return count / (got["last_ok"] - got["first"]), got
                await asyncio.sleep(0.2)
            raise SystemExit(f"only {got['ok']} of {count} delivered within 120 s")
    finally:
        os.killpg(deliverer.pid, signal.SIGTERM)
        try:
            deliverer.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(deliverer.pid, signal.SIGKILL)
            deliverer.wait()


async def bench_plain_httpx(base: str, count: int, in_flight: int) -> tuple[float, float]:
    body = orjson.dumps(payload(uuid.uuid4()))
    limit = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(timeout=10) as client:

        async def one() -> None:
            async with limit:
                response = await client.post(
                    f"{base}/plain", content=body, headers={"content-type": "application/json"}
                )
                response.raise_for_status()

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one() for _ in range(count)))
        return count / (time.perf_counter() - started), time.process_time() - cpu


async def delete_topics(settings: KafkaSettings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        t = settings.topics
        names = [t.events, t.send, t.webhooks, t.applications, t.dead_letters]
        await admin.delete_topics([*names, state_topic(settings)])
    finally:
        await admin.close()


async def main(count: int, in_flight: int) -> None:
    settings = KafkaSettings(
        bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        partitions=4,
        topics=Topics.from_prefix(f"bench{uuid.uuid4().hex[:8]}."),
    )
    await ensure_topics(settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiver = spawn([sys.executable, __file__, "--receiver", str(port)], dict(os.environ))
    try:
        await wait_until_up(base)
        rate, got = await bench_deliverer(settings, base, count, in_flight)
        print(
            f"dispatch-webhooks ({in_flight} in flight): {count} webhooks, "
            f"{got['failed']:.0f} first attempts failed "
            f"(503) and retried: {rate:,.0f} deliveries/s wall clock; the deliverer used "
            f"{got['cpu_s']:.2f} CPU-s ({count / got['cpu_s']:,.0f} deliveries per CPU-second)"
        )
        plain, plain_cpu = await bench_plain_httpx(base, count, in_flight)
        print(
            f"plain httpx POST loop ({in_flight} in flight): {count} POSTs: {plain:,.0f} "
            f"requests/s wall clock, {plain_cpu:.2f} CPU-s "
            f"({count / plain_cpu:,.0f} per CPU-second)"
        )
    finally:
        os.killpg(receiver.pid, signal.SIGTERM)
        receiver.wait(timeout=15)
        await delete_topics(settings)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receiver:
        run_receiver(args.receiver)
    else:
        asyncio.run(main(args.count, args.in_flight))
