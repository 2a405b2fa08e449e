"""Dispatch against its peer, Temporal, on the same failover workflow, in one run.

The system a Python user would pick instead for durable failover with timers
is Temporal. Its side here: the ``temporal`` CLI's dev server (SQLite in a
file: durable across restarts), one Python SDK worker running
:mod:`bench.peer_temporal_workflow` (an activity calls the provider, the
workflow waits for status signals with the step's expiry as timeout, fails
over, webhooks each status and posts one final report), and a small HTTP
endpoint that checks each provider status callback's signature and signals
the workflow by id (:mod:`bench.peer_temporal_worker`).

Both systems get the same posters (``--concurrency`` of them, ``--count``
single-SMS dispatches on the immediate-success path), the same simulator
script and speed, and the same in-process receiver of webhooks. A Dispatch
poster POSTs to the gateway; a Temporal poster starts a workflow with the
SDK's client (the gRPC call returns once the server has stored it). Prints,
for each system, dispatches/s, POST → provider call and POST → final report
p50/p99, CPU-ms per dispatch per process, and the ratios.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_peer_temporal.py --count 500

Only ports from ``--port-base`` on are used for the Temporal side (frontend,
its HTTP API and metrics, the status endpoint, the simulator).
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from temporalio.client import Client  # noqa: E402

from bench.bench_end_to_end import run_baseline, run_dispatch  # noqa: E402
from bench.e2e_support import (  # noqa: E402
    RunFigures,
    cpu_seconds,
    post_all,
    wait_all_finals,
    workflow,
)
from bench.peer_temporal_workflow import TASK_QUEUE, client_ref  # noqa: E402
from services.webhooks.verify import verify_webhook  # noqa: E402
from tests.integration.stack import CALLBACK_SECRET, Receiver, serve_receiver  # noqa: E402
from tests.processes import Process  # noqa: E402

# The webhooks' signature secret of the Temporal side's application.
WEBHOOK_SECRET = "peer-webhook-signature-secret-32-bytes!"


async def run_temporal(
    receiver: Receiver, count: int, concurrency: int, speed: str, port_base: int, idle_s: float
) -> RunFigures:
    frontend, signals_port, simulator_port = port_base, port_base + 3, port_base + 4
    target = f"127.0.0.1:{frontend}"
    receiver.secrets["temporal"] = WEBHOOK_SECRET
    with tempfile.TemporaryDirectory() as tmp:
        processes: list[Process] = []

        def start(name: str, *args: str, env: dict[str, str] | None = None) -> Process:
            process = Process(name, list(args), env or {}, Path(tmp))
            processes.append(process)
            return process

        try:
            server = start(
                "temporal server",
                "temporal", "server", "start-dev", "--headless", "--ip", "127.0.0.1",
                "--port", str(frontend), "--http-port", str(frontend + 1),
                "--metrics-port", str(frontend + 2), "--log-level", "error",
                "--db-filename", str(Path(tmp) / "temporal.sqlite"),
            )  # fmt: skip
            server.wait_for_port(frontend, timeout=60)
            simulator = start(
                "simulator",
                "dispatch-simulator",
                env={
                    "SIMULATOR_PORT": str(simulator_port),
                    "SIMULATOR_CALLBACK_URL": f"http://127.0.0.1:{signals_port}/v0.1/status",
                    "SIMULATOR_SPEED": speed,
                    "SIMULATOR_SEED": "7",
                    "SIMULATOR_SIGNATURE_SECRET": CALLBACK_SECRET,
                },
            )
            start(
                "worker (workflow + activities)",
                "python", str(ROOT / "bench" / "peer_temporal_worker.py"), "worker",
                "--target", target,
                "--provider-url", f"http://127.0.0.1:{simulator_port}/v0.1/messages",
                "--webhook-secret", WEBHOOK_SECRET,
            )  # fmt: skip
            signals = start(
                "status endpoint (signals)",
                "python", str(ROOT / "bench" / "peer_temporal_worker.py"), "signals",
                "--target", target, "--port", str(signals_port),
                "--callback-secret", CALLBACK_SECRET,
            )  # fmt: skip
            simulator.wait_for_port(simulator_port)
            signals.wait_for_port(signals_port)
            return await _drive(
                receiver, processes, target, simulator_port, count, concurrency, idle_s
            )
        finally:
            for process in reversed(processes):
                process.stop()


async def _drive(
    receiver: Receiver,
    processes: list[Process],
    target: str,
    simulator_port: int,
    count: int,
    concurrency: int,
    idle_s: float,
) -> RunFigures:
    client = await Client.connect(target)
    run_id = uuid.uuid4().hex[:8]
    posted_at: dict[str, float] = {}
    final_at: dict[str, float] = {}

    async def submit(i: int) -> str | None:
        dispatch_uuid = f"{run_id}-{i}"
        await client.start_workflow(
            "Failover",
            {
                "dispatch_uuid": dispatch_uuid,
                "application_id": "temporal",
                "workflow": workflow(i),
                "status_url": receiver.url("temporal", "status"),
                "final_report_url": receiver.url("temporal", "final"),
            },
            id=dispatch_uuid,
            task_queue=TASK_QUEUE,
        )
        return dispatch_uuid

    # Warm up: the worker polls and the first workflow runs all the way through.
    warm: dict[str, float] = {}
    await post_all(submit, 1, 1, warm)
    await wait_all_finals(receiver, warm, {}, timeout=120)
    pids = {p.name: p.popen.pid for p in processes}
    pids["bench (client + receiver)"] = os.getpid()
    idle_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    await asyncio.sleep(idle_s)
    idle = {name: (cpu_seconds(pid) - idle_before[name]) / idle_s for name, pid in pids.items()}
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.time()
    await post_all(lambda i: submit(i + 1), count, concurrency, posted_at)
    await wait_all_finals(receiver, posted_at, final_at, timeout=600)
    finished = max(final_at.get(u, time.time()) for u in posted_at)
    cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    async with httpx.AsyncClient() as http:
        sends = (await http.get(f"http://127.0.0.1:{simulator_port}/_sim/sends")).json()
    first_attempt = sends["first_attempt_at"]
    completed = [u for u in posted_at if u in final_at]
    return RunFigures(
        system="Temporal",
        posted=len(posted_at),
        completed=len(completed),
        wall_s=finished - started,
        to_provider=[
            first_attempt[client_ref(u, 0)] - posted_at[u]
            for u in completed
            if client_ref(u, 0) in first_attempt
        ],
        to_final=[final_at[u] - posted_at[u] for u in completed],
        cpu={name: cpu_after[name] - cpu_before[name] for name in pids},
        idle=idle,
    )


def verify_signatures(receiver: Receiver, received: list[dict[str, Any]]) -> int:
    """How many webhooks of both systems were checked; raises on a bad signature."""
    signed = [r for r in received if r["app"] in receiver.secrets]
    for record in signed:
        verify_webhook(record["body"], record["authorization"], receiver.secrets[record["app"]])
    return len(signed)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--speed", default="20", help="SIMULATOR_SPEED (20: delivered after 50 ms)")
    parser.add_argument("--idle-s", type=float, default=5, help="seconds measured at rest")
    parser.add_argument("--rounds", type=int, default=1, help="Dispatch then Temporal, N times")
    parser.add_argument("--port-base", type=int, default=23010)
    parser.add_argument(
        "--baseline-count",
        type=int,
        default=5000,
        help="items of the one-hop Kafka baseline, run first (it warms the broker up)",
    )
    parser.add_argument(
        "--temporal-only", action="store_true", help="skip Dispatch (a check of the peer alone)"
    )
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    os.environ["E2E_SIMULATOR_SPEED"] = args.speed

    results: list[tuple[RunFigures | None, RunFigures]] = []
    receiver = Receiver()
    baseline: dict[str, float] | None = None
    async with serve_receiver(receiver):
        if not args.temporal_only:
            # Also warms the broker up: right after a start its JIT takes half
            # of its CPU, which a long-running broker does not pay.
            baseline = await run_baseline(bootstrap, receiver, args.baseline_count)
        signed = 0
        for _ in range(args.rounds):
            first = len(receiver.received)
            ours = None
            if not args.temporal_only:
                ours = await run_dispatch(
                    bootstrap, receiver, args.count, args.concurrency, idle_s=args.idle_s
                )
            peer = await run_temporal(
                receiver, args.count, args.concurrency, args.speed, args.port_base, args.idle_s
            )
            results.append((ours, peer))
            # Each round's Dispatch side has its own application (and secret).
            signed += verify_signatures(receiver, receiver.received[first:])

    print(
        f"\n{args.count} single-SMS dispatches, {args.concurrency} posters, "
        f"simulator speed {args.speed}"
    )
    for ours, peer in results:
        for figures in (ours, peer):
            if figures is None:
                continue
            for line in figures.lines():
                print("  " + line)
            idle_total = sum(figures.idle.values())
            print(f"  at rest: {idle_total * 100:.1f} % of a core over all its processes")
        if ours is None:
            continue
        print(
            f"  Dispatch / Temporal: {ours.rate / max(peer.rate, 1e-9):.1f} times the "
            "dispatches/s, "
            f"{peer.cpu_ms_per_dispatch / max(ours.cpu_ms_per_dispatch, 1e-9):.1f} times less "
            "CPU per dispatch ("
            f"{peer.system_cpu_ms_per_dispatch / max(ours.system_cpu_ms_per_dispatch, 1e-9):.1f} "
            "times, the systems alone)"
        )
    print(f"  webhooks received from both systems, each with a valid signature: {signed}")
    if baseline is not None:
        print(
            f"  baseline (produce → consume → POST, same broker and receiver, run first): "
            f"{baseline['rate']:.0f} items/s, p50 {baseline['p50']:.0f} ms, "
            f"p99 {baseline['p99']:.0f} ms"
        )


if __name__ == "__main__":
    asyncio.run(main())
