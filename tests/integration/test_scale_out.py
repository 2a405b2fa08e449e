"""Every process scaled out under a steady load: two gateways (the client
spreads its requests over both), two senders, two webhook deliverers, two
projectors on one PostgreSQL store, and processors going 1 → 3 → 1 while
dispatches with a 15 s expiry have their timers pending, so partitions move
with timers in them both ways.

Every dispatch a gateway accepted ends with exactly one final report, no step
is sent twice, no status webhook is missing, and each expiry fires exactly
once: one ``StepTimedOut`` per (dispatch, step) on the log, at one offset (an
orderly rebalance hands a partition over after its last commit, so nothing is
processed twice).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from events.topics import Topics
from services.kafka import KafkaSettings, ensure_topics
from tests.integration.load import Load, known_to_every_gateway, tally
from tests.integration.stack import Receiver, Stack, serve_receiver
from tests.processes import Process

pytestmark = pytest.mark.kafka

RATE = 6  # dispatches a second


async def _owned_partitions(processor: Process, timeout: float) -> None:
    """Until the worker has been given partitions and is processing them."""
    deadline = time.monotonic() + timeout
    while "Worker]: Ready" not in processor.log():
        if time.monotonic() > deadline or not processor.alive():
            raise AssertionError(f"{processor.name} not ready:\n{processor.log()[-3000:]}")
        await asyncio.sleep(0.5)


def _log_lines_naming(stack: Stack, dispatches: list[str]) -> str:
    """Every process's log lines that name one of ``dispatches``: where a lost
    one stopped is the first thing to know."""
    lines = [
        f"{process.name}: {line}"
        for process in stack.processes
        for line in process.log().splitlines()
        if any(dispatch in line for dispatch in dispatches)
    ]
    return "\n".join(lines[:200])


@pytest.mark.timeout(540)
async def test_every_process_scaled_out_loses_and_repeats_nothing(
    kafka_bootstrap: str, postgres_url: str, tmp_path: Path
) -> None:
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        partitions=6,
        topics=Topics.from_prefix(f"scale{int(time.time())}."),
    )
    await ensure_topics(settings)
    receiver = Receiver()
    async with serve_receiver(receiver):
        stack = Stack(
            settings=settings,
            tmp=tmp_path,
            receiver=receiver,
            store_url=postgres_url,
            scale={"gateway": 2, "sender": 2, "webhooks": 2, "projector": 2},
            extra_env={
                "SIMULATOR_CALLBACK_ATTEMPTS": "40",
                "SIMULATOR_SPEED": "2",
                "PROCESSOR_SESSION_TIMEOUT_S": "10",
            },
        )
        try:
            await asyncio.to_thread(stack.start_all)
            app = stack.create_app("shop")
            await known_to_every_gateway(stack, app)
            load = Load(stack, app, RATE)
            load.start()
            await asyncio.sleep(10)  # dispatches with pending timers on one processor

            # 1 → 3: two workers join while the load goes on.
            joined = [stack.start_instance("processor", 1), stack.start_instance("processor", 2)]
            for worker in joined:
                await _owned_partitions(worker, 90)
            await asyncio.sleep(20)  # timers armed on all three now fall due

            # 3 → 1: both leave in an orderly way (SIGTERM), timers pending.
            for worker in joined:
                await asyncio.to_thread(worker.stop, 30.0)
            await asyncio.sleep(20)
            await load.stop()
            await load.wait_until_ended(timeout=120)
            await asyncio.sleep(3)  # a duplicate, if any, would arrive now
            result = await tally(stack, load)
            traces = _log_lines_naming(stack, result.lost_dispatches)
            exited = [name for name, p in stack.instances.items() if not p.alive()]
        finally:
            await asyncio.to_thread(stack.stop_all)

    print(f"\nscale-out run, answers {dict(load.answers)}\n{result.table()}")
    assert all(code == 202 for code in load.answers), (load.answers, load.unexpected[:5])
    assert result.accepted >= 40 * RATE, result.accepted
    assert exited == ["processor-2", "processor-3"], f"exited: {exited}\n{stack.logs()}"
    summary = "\n".join(result.problems[:30]) + f"\n{result.table()}"
    assert result.lost == 0, f"{summary}\n{traces}"
    assert result.duplicate_finals == 0 and result.redelivered_finals == 0, summary
    assert result.wrong_final_status == 0, summary
    assert result.double_sends == 0, summary
    assert result.missing_status_webhooks == 0, summary
    assert result.timers_missing == 0 and result.timers_fired_twice == 0, summary
    assert result.timers_repeated == 0, summary
    assert result.dead_lettered == 0, summary
