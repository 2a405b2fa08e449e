"""Parts shared by the end-to-end benchmarks (``bench_end_to_end.py`` and its
Temporal peer ``bench_peer_temporal.py``): the dispatch posted, the posters,
the CPU of a process read from ``/proc``, percentiles and the printed table.

Both systems are driven by the same posters against the same simulator
script and report to the same in-process receiver, so their figures differ
only by what sits between.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tests.integration.stack import Receiver

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def workflow(i: int) -> list[dict[str, Any]]:
    """One SMS step on the immediate-success path (recipient's last digit 1:
    submitted, then delivered)."""
    return [
        {
            "from": {"type": "sms", "number": "447700900000"},
            "to": {"type": "sms", "number": f"4477009{i % 10000:04d}1"},
            "message": {"content": {"type": "text", "text": "Your code is 1234"}},
        }
    ]


def body(i: int) -> bytes:
    """The ``POST /v0.1/dispatch`` body of dispatch ``i``."""
    return orjson.dumps({"template": "failover", "workflow": workflow(i)})


def cpu_seconds(pid: int) -> float:
    """CPU of a process and of its children: PostgreSQL serves each connection
    from a child of its postmaster (its own, and those it has reaped). The
    bench's own process is read without children: every process it measures
    is one of them."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    if pid == os.getpid():
        return (int(fields[11]) + int(fields[12])) / TICKS
    total = sum(int(f) for f in fields[11:15]) / TICKS
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            child_fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(child_fields[11]) + int(child_fields[12])) / TICKS
    return total


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def broker_pid(bootstrap: str) -> int | None:
    if os.environ.get("BROKER_PID"):  # a broker started from another checkout
        return int(os.environ["BROKER_PID"])
    port = bootstrap.rsplit(":", 1)[1]
    pidfile = ROOT / ".local" / f"kafka-{port}" / "broker.pid"
    return int(pidfile.read_text()) if pidfile.exists() else None


def postgres_pid(url: str) -> int | None:
    """The postmaster of the local server ``scripts/postgres.sh`` runs at ``url``'s port."""
    port = url.rsplit(":", 1)[1].split("/", 1)[0]
    pidfile = ROOT / ".local" / f"postgres-{port}" / "postmaster.pid"
    return int(pidfile.read_text().split()[0]) if pidfile.exists() else None


def final_times(receiver: Receiver, into: dict[str, float]) -> None:
    """The arrival time of each dispatch's first final report, into ``into``."""
    for record in receiver.received:
        if record["kind"] == "final":
            into.setdefault(str(record["payload"]["dispatch_uuid"]), record["at"])


# Submits dispatch ``i``; its id once accepted (durably), None if refused.
Submit = Callable[[int], Awaitable[str | None]]


async def post_all(
    submit: Submit,
    count: int,
    concurrency: int,
    posted_at: dict[str, float],
    wait_final: Callable[[str], Awaitable[None]] | None = None,
    rate: float | None = None,
) -> None:
    """``count`` dispatches from ``concurrency`` posters; the time each was
    sent goes into ``posted_at``. With ``wait_final``, a poster waits for the
    final report of its dispatch before sending the next (latency without a
    queue). With ``rate``, the posts are paced at that many a second (a fixed
    offered load, so that runs compare at the same load) instead of as fast as
    the system takes them."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    next_slot = [time.monotonic()]

    async def poster() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            if rate:
                slot, next_slot[0] = next_slot[0], next_slot[0] + 1 / rate
                await asyncio.sleep(max(0.0, slot - time.monotonic()))
            sent = time.time()
            dispatch_id = await submit(i)
            if dispatch_id is None:
                continue
            posted_at[dispatch_id] = sent
            if wait_final is not None:
                await wait_final(dispatch_id)

    await asyncio.gather(*(poster() for _ in range(concurrency)))


async def wait_all_finals(
    receiver: Receiver, posted_at: dict[str, float], final_at: dict[str, float], timeout: float
) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        final_times(receiver, final_at)
        if all(u in final_at for u in posted_at):
            return
        await asyncio.sleep(0.2)
    final_times(receiver, final_at)


# The harness's own processes: the load (posters and webhook receiver) and the
# provider (simulator) that both systems are driven by; not the system measured.
HARNESS = ("bench (client + receiver)", "simulator")


@dataclass
class RunFigures:
    """What one system did over one timed run."""

    system: str
    posted: int
    completed: int
    wall_s: float
    to_provider: list[float]
    to_final: list[float]
    cpu: dict[str, float]  # CPU-seconds by process over the run
    idle: dict[str, float] = field(default_factory=dict)  # CPU-seconds a second at rest
    details: list[str] = field(default_factory=list)  # more lines to print (Kafka counts)

    @property
    def rate(self) -> float:
        return self.completed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_ms_per_dispatch(self) -> float:
        return 1000 * sum(self.cpu.values()) / max(self.completed, 1)

    @property
    def system_cpu_ms_per_dispatch(self) -> float:
        """CPU per dispatch of the system alone (its processes and the broker)."""
        system = sum(seconds for name, seconds in self.cpu.items() if name not in HARNESS)
        return 1000 * system / max(self.completed, 1)

    def lines(self) -> list[str]:
        out = [
            f"{self.system}: completed {self.completed}/{self.posted} in {self.wall_s:.1f} s, "
            f"{self.rate:.1f} dispatches/s"
        ]
        if self.to_provider:
            out.append(
                f"  POST → provider call: p50 {pct(self.to_provider, 0.5):.0f} ms, "
                f"p99 {pct(self.to_provider, 0.99):.0f} ms"
            )
        if self.to_final:
            out.append(
                f"  POST → final report:  p50 {pct(self.to_final, 0.5):.0f} ms, "
                f"p99 {pct(self.to_final, 0.99):.0f} ms"
            )
        total = sum(self.cpu.values())
        out.append(f"  CPU over the run ({total:.1f} CPU-s in {self.wall_s:.1f} s, 2 cores):")
        for name, seconds in sorted(self.cpu.items(), key=lambda kv: -kv[1]):
            out.append(
                f"    {name:31} {seconds:6.1f} CPU-s  {100 * seconds / (total or 1):5.1f} %  "
                f"{1000 * seconds / max(self.completed, 1):6.2f} ms per dispatch"
            )
        out.append(f"  CPU per dispatch, all processes: {self.cpu_ms_per_dispatch:.1f} ms")
        out.append(
            f"  CPU per dispatch, the system alone ({' and '.join(HARNESS)} left out): "
            f"{self.system_cpu_ms_per_dispatch:.1f} ms"
        )
        return out + ["  " + line for line in self.details]
