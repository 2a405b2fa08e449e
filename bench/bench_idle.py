"""What the stack costs at rest, and that resting cheaply costs no latency.

Starts the whole product as real processes on the broker at ``KAFKA_BOOTSTRAP``
(fresh topic prefix), as ``make run`` does: gateway, processor, sender,
webhook deliverer, projector and the simulator, plus an in-process webhook
receiver. After a warm-up dispatch (and its failover) has ended, it measures
from ``/proc`` the CPU each process and the broker use for ``--idle-s`` seconds
with no traffic at all, as a share of one core.

Then the two latencies a cheaper rest must not cost, measured one dispatch at a
time after a pause (a quiet stack is where a lazier poll or tick would show):

- POST → provider call (the simulator's arrival time for step 0);
- failover lateness: a first step that is only ever ``submitted`` with an
  ``expiry_time`` of 15 s, and the time its second step reached the provider
  after the first one, less those 15 s (the deadline's tick, the fold, the
  send).

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_idle.py --idle-s 30
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import orjson  # noqa: E402

from bench.e2e_support import broker_pid, cpu_seconds, pct  # noqa: E402
from bench.kafka_counts import counting_env, process_counts  # noqa: E402
from events.references import client_ref  # noqa: E402
from events.topics import Topics  # noqa: E402
from services.kafka import KafkaSettings, ensure_topics  # noqa: E402
from tests.integration.stack import Receiver, Stack, serve_receiver, wait_for_finals  # noqa: E402


def sms(to: str, expiry: int | None = None) -> dict[str, object]:
    step: dict[str, object] = {
        "from": {"type": "sms", "number": "447700900000"},
        "to": {"type": "sms", "number": to},
        "message": {"content": {"type": "text", "text": "Your code is 1234"}},
    }
    if expiry is not None:
        step["failover"] = {"expiry_time": expiry, "condition_status": "delivered"}
    return step


async def post(
    client: httpx.AsyncClient, stack: Stack, auth: dict[str, str], workflow: list[object]
) -> tuple[str, float]:
    sent = time.time()
    r = await client.post(
        f"{stack.gateway}/v0.1/dispatch",
        content=orjson.dumps({"template": "failover", "workflow": workflow}),
        headers={**auth, "Content-Type": "application/json"},
    )
    r.raise_for_status()
    return str(r.json()["dispatch_uuid"]), sent


async def first_attempts(client: httpx.AsyncClient, stack: Stack) -> dict[str, float]:
    sends = (await client.get(f"{stack.simulator}/_sim/sends")).json()["first_attempt_at"]
    return {str(k): float(v) for k, v in sends.items()}


async def measure(
    stack: Stack, idle_s: float, probes: int, pause_s: float, counts_dir: Path
) -> dict[str, object]:
    app = stack.create_app("idle")
    pids = {p.name: p.popen.pid for p in stack.processes}
    ours = dict(pids)
    broker = broker_pid(stack.settings.bootstrap_servers)
    if broker:
        pids["broker"] = broker
    async with httpx.AsyncClient(timeout=30) as client:
        # Warm up as the demo does: a dispatch that fails over, every process
        # up and the application known.
        warm_up = [sms("447700900003", 15), sms("447700900001")]
        for attempt in range(150):
            try:
                uuid_, _ = await post(client, stack, app.auth, warm_up)
                break
            except httpx.HTTPStatusError as exc:
                if attempt == 149:
                    raise RuntimeError(f"the stack never accepted: {exc.response.text}") from exc
                await asyncio.sleep(0.2)
        await wait_for_finals(stack, [uuid_], timeout=120)
        await asyncio.sleep(5)  # the last statuses' webhooks and commits settle
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        requests_before = process_counts(counts_dir, ours)
        started = time.monotonic()
        await asyncio.sleep(idle_s)
        elapsed = time.monotonic() - started
        idle = {name: (cpu_seconds(pid) - before[name]) / elapsed for name, pid in pids.items()}
        await asyncio.sleep(0.5)  # the counters are written four times a second
        requests_after = process_counts(counts_dir, ours)
        requests = {
            name: {
                key.split(" ", 1)[1]: value / elapsed
                for key, value in (requests_after[name] - requests_before[name]).items()
                if key.startswith("request ")
            }
            for name in ours
        }

        to_provider: list[float] = []
        for _ in range(probes):
            await asyncio.sleep(pause_s)  # quiet again before each probe
            uuid_, sent = await post(client, stack, app.auth, [sms("447700900001")])
            await wait_for_finals(stack, [uuid_], timeout=60)
            sends = await first_attempts(client, stack)
            to_provider.append(sends[client_ref(uuid_, 0)] - sent)

        failovers: list[str] = []
        for _ in range(probes):
            uuid_, _ = await post(
                client, stack, app.auth, [sms("447700900004", 15), sms("447700900001")]
            )
            failovers.append(uuid_)
            await asyncio.sleep(0.37)  # deadlines spread over the second
        await wait_for_finals(stack, failovers, timeout=120)
        sends = await first_attempts(client, stack)
        lateness = [sends[client_ref(u, 1)] - sends[client_ref(u, 0)] - 15 for u in failovers]
    return {"idle": idle, "requests": requests, "to_provider": to_provider, "lateness": lateness}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--idle-s", type=float, default=30, help="seconds measured with no traffic")
    parser.add_argument("--probes", type=int, default=10, help="dispatches of each latency probe")
    parser.add_argument("--pause-s", type=float, default=2, help="quiet before each POST probe")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    os.environ.setdefault("E2E_SIMULATOR_SPEED", "1")  # statuses as a real provider sends them
    with tempfile.TemporaryDirectory() as tmp:
        settings = KafkaSettings(
            bootstrap_servers=bootstrap,
            partitions=8,
            topics=Topics.from_prefix(f"idle{uuid.uuid4().hex[:6]}."),
        )
        await ensure_topics(settings)
        receiver = Receiver()
        async with serve_receiver(receiver):
            stack = Stack(settings=settings, tmp=Path(tmp), receiver=receiver)
            # Each process counts its Kafka requests (bench/kafka_counting).
            counts_dir = Path(tmp) / "kafka-counts"
            counts_dir.mkdir()
            stack.extra_env.update(counting_env(counts_dir))
            try:
                await asyncio.to_thread(stack.start_all)
                result = await measure(stack, args.idle_s, args.probes, args.pause_s, counts_dir)
            finally:
                await asyncio.to_thread(stack.stop_all)

    idle = result["idle"]
    assert isinstance(idle, dict)
    print(f"\nat rest ({args.idle_s:.0f} s, no traffic), share of one core:")
    for name, rate in sorted(idle.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<10} {100 * rate:5.1f} %")
    print(
        f"  {'all':<10} {100 * sum(idle.values()):5.1f} %"
        f"   (without the broker: {100 * sum(v for k, v in idle.items() if k != 'broker'):.1f} %)"
    )
    requests = result["requests"]
    assert isinstance(requests, dict)
    print("Kafka requests a second at rest, by process:")
    for name, by_api in sorted(requests.items()):
        listed = ", ".join(f"{api} {rate:.2f}" for api, rate in sorted(by_api.items()) if rate)
        print(f"  {name:<10} {sum(by_api.values()):5.2f}   {listed}")
    print(f"  {'all':<10} {sum(sum(r.values()) for r in requests.values()):5.2f}")
    to_provider = result["to_provider"]
    lateness = result["lateness"]
    assert isinstance(to_provider, list) and isinstance(lateness, list)
    if not args.probes:
        return
    print(
        f"POST → provider, one at a time after {args.pause_s:.0f} s quiet: "
        f"p50 {pct(to_provider, 0.5):.0f} ms, max {1000 * max(to_provider):.0f} ms"
    )
    print(
        f"failover lateness (15 s expiry, next step at the provider): "
        f"p50 {pct(lateness, 0.5):.0f} ms, max {1000 * max(lateness):.0f} ms"
    )


if __name__ == "__main__":
    asyncio.run(main())
