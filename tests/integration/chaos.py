"""The chaos run: a steady load of mixed-outcome dispatches while, in turn,
each process is killed -9 and started again, each sender is frozen (SIGSTOP)
past its session when there is another to take its partitions over, the
broker is restarted, the webhook receiver is down, and the provider answers
5xx and then times out for a while. Shared by the bounded test in the suite
(`tests/integration/test_chaos.py`) and the longer `bench/bench_chaos.py`.

Only the simulator (the stand-in for the provider) is never killed: its
counts of what it accepted per ``client_ref`` are how double sends are found.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from events.topics import Topics
from services.kafka import KafkaSettings, ensure_topics
from tests.integration.faults import ProviderFaults, serve_provider_faults
from tests.integration.load import Load, Tally, known_to_every_gateway, tally
from tests.integration.stack import ENTRY_POINTS, Receiver, Stack, serve_receiver
from tests.integration.test_broker_restart import Broker

# How long each fault lasts, in seconds.
BROKER_DOWN_S = 6.0
RECEIVER_DOWN_S = 15.0
PROVIDER_5XX_S = 10.0
PROVIDER_SLOW_S = 10.0
# Longer than a sender's session (10 s): the group hands its partitions over.
SENDER_FROZEN_S = 15.0


@dataclass
class ChaosRun:
    accepted_rate: float
    tally: Tally
    answers: dict[int, int]
    timeline: list[str] = field(default_factory=list)
    processes_down_at_end: list[str] = field(default_factory=list)
    unexpected_answers: list[str] = field(default_factory=list)


@dataclass
class Chaos:
    stack: Stack
    broker: Broker
    provider: ProviderFaults
    started: float = field(default_factory=time.monotonic)
    timeline: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.timeline.append(f"{time.monotonic() - self.started:6.1f}s  {what}")

    def faults(self) -> list[tuple[str, Callable[[], Awaitable[None]]]]:
        """Every fault, in the order a cycle plays them."""
        kills = [
            (f"kill -9 {name}", self._kill_restart(name))
            for kind in ENTRY_POINTS
            if kind != "simulator"
            for name in self.stack.instances
            if name.partition("-")[0] == kind
        ]
        senders = [name for name in self.stack.instances if name.partition("-")[0] == "sender"]
        freezes = [
            (f"{name} frozen {SENDER_FROZEN_S:g} s (SIGSTOP)", self._freeze(name))
            for name in senders
            if len(senders) > 1
        ]
        return [
            *kills,
            *freezes,
            ("broker restart", self.restart_broker),
            ("webhook receiver down", self.receiver_down),
            ("provider 5xx, then timing out", self.provider_down),
        ]

    def _kill_restart(self, name: str) -> Callable[[], Awaitable[None]]:
        async def fault() -> None:
            await asyncio.to_thread(self.stack.kill_and_restart, name)

        return fault

    def _freeze(self, name: str) -> Callable[[], Awaitable[None]]:
        async def fault() -> None:
            pid = self.stack.instances[name].popen.pid
            os.kill(pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(SENDER_FROZEN_S)
            finally:
                os.kill(pid, signal.SIGCONT)

        return fault

    async def restart_broker(self) -> None:
        await asyncio.to_thread(self.broker.run, "stop")
        await asyncio.sleep(BROKER_DOWN_S)
        await asyncio.to_thread(self.broker.run, "start", keep_data=True)

    async def receiver_down(self) -> None:
        self.stack.receiver.down = True
        await asyncio.sleep(RECEIVER_DOWN_S)
        self.stack.receiver.down = False

    async def provider_down(self) -> None:
        self.provider.mode = "unavailable"
        await asyncio.sleep(PROVIDER_5XX_S)
        self.provider.mode = "slow"
        await asyncio.sleep(PROVIDER_SLOW_S)
        self.provider.mode = "normal"

    async def play(self, minutes: float | None, pause_s: float) -> None:
        """Every fault once in turn (``minutes`` None), or cycles of them
        until ``minutes`` have gone by."""
        deadline = self.started + (minutes or 0) * 60
        while True:
            for name, fault in self.faults():
                self.note(f"{name} …")
                await fault()
                self.note(f"{name}: over")
                await asyncio.sleep(pause_s)
            if minutes is None or time.monotonic() > deadline:
                return


async def run_chaos(
    broker: Broker,
    tmp: Path,
    *,
    rate: float,
    minutes: float | None = None,
    pause_s: float = 5.0,
    scale: dict[str, int] | None = None,
    store_url: str | None = None,
) -> ChaosRun:
    settings = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{broker.port}",
        partitions=4,
        topics=Topics.from_prefix(f"chaos{uuid.uuid4().hex[:6]}."),
    )
    await ensure_topics(settings)
    receiver = Receiver()
    async with serve_receiver(receiver):
        stack = Stack(settings=settings, tmp=tmp, receiver=receiver)
        provider = ProviderFaults(upstream=stack.simulator)
        stack.store_url = store_url
        stack.scale = scale or {}
        stack.extra_env = {
            "PROVIDER_BASE_URL": provider.url,
            # A provider retries a status it could not post (gateway killed, broker down).
            "SIMULATOR_CALLBACK_ATTEMPTS": "60",
            "SIMULATOR_SPEED": "2",
            # A processor killed -9 is replaced within seconds, not the default 10.
            "PROCESSOR_SESSION_TIMEOUT_S": "6",
            # A last step whose send was left unknown and never reached the
            # provider (a sender killed between its intent and the call) ends
            # ``error`` at this limit: well inside the wait, and far beyond
            # any status the run delays (the default is a day).
            "PROCESSOR_FINAL_STEP_LIMIT_S": "90",
        }
        async with serve_provider_faults(provider):
            try:
                await asyncio.to_thread(stack.start_all)
                app = stack.create_app("chaos")
                await known_to_every_gateway(stack, app)
                load = Load(stack, app, rate)
                load.start()
                chaos = Chaos(stack, broker, provider)
                chaos.note(f"load at {rate}/s")
                await asyncio.sleep(pause_s)
                await chaos.play(minutes, pause_s)
                await load.stop()
                chaos.note(f"load stopped: {len(load.accepted)} accepted")
                await load.wait_until_ended(timeout=180)
                chaos.note("every accepted dispatch ended (or the wait ran out)")
                await asyncio.sleep(3)  # a duplicate, if any, would arrive now
                result = await tally(stack, load)
                down = [name for name, p in stack.instances.items() if not p.alive()]
            finally:
                await asyncio.to_thread(stack.stop_all)
    elapsed = time.monotonic() - chaos.started
    return ChaosRun(
        accepted_rate=len(load.accepted) / elapsed,
        tally=result,
        answers=dict(load.answers),
        timeline=chaos.timeline,
        processes_down_at_end=down,
        unexpected_answers=load.unexpected,
    )
