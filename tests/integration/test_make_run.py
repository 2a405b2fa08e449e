"""``make run`` as a newcomer sees it: the demo's story in the terminal, every
process's log in its own file, no alarming lines, and a clear word when a
process dies. Runs scripts/run.sh against the test broker on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from services.kafka import KafkaSettings
from tests.conftest import kafka_env
from tests.processes import free_port

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = ("gateway", "processor", "sender", "webhooks", "projector", "simulator", "console")


def wait_for(output: Path, needle: str, run: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = output.read_text(errors="replace")
        if needle in text:
            return text
        if run.poll() is not None:
            raise AssertionError(f"make run ended early:\n{text}")
        time.sleep(0.3)
    raise AssertionError(f"no {needle!r} within {timeout}s:\n{output.read_text()}")


def test_the_first_run_reads_like_a_product_and_names_a_dead_process(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    ports = {
        name: str(free_port())
        for name in (
            "GATEWAY_PORT", "PROJECTOR_PORT", "SIMULATOR_PORT", "CONSOLE_PORT",
            "DEMO_RECEIVER_PORT", "PROCESSOR_METRICS_PORT",
        )
    }  # fmt: skip
    env = {
        **os.environ,
        **kafka_env(kafka_settings),
        **ports,
        "RUN_BROKER": "0",
        "RUN_DIR": str(run_dir),
        "SIMULATOR_SPEED": "4",
    }
    output = tmp_path / "terminal.txt"
    with output.open("wb") as terminal:
        run = subprocess.Popen(
            ["scripts/run.sh"],
            cwd=ROOT,
            env=env,
            stdout=terminal,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        text = wait_for(output, "Ctrl-C stops everything", run, timeout=120)
        lines = text.splitlines()
        # The story: three timelines, their final reports, how to go on.
        assert text.count("[webhook final ]") == 3
        for label in ("dispatch 1", "dispatch 2", "dispatch 3"):
            assert any(line.startswith(f"  [{label}] WorkflowRequested") for line in lines)
        assert "StepTimedOut" in text and "failing over" in text
        assert "operator console: http://127.0.0.1:" in text
        # Library and process logs are in files the output names, not here.
        for name in PROCESSES:
            assert f"{name} ({run_dir}/logs/{name}.log)" in text
            assert (run_dir / "logs" / f"{name}.log").exists()
        noisy = [line for line in lines if any(w in line for w in ("ERROR", "WARNING", " INFO "))]
        assert noisy == []
        # The 24 h guard is not shown as if it were the failover deadline.
        assert "unless submitted" not in text and "final_step_limit" not in text
        assert len(lines) < 90

        # A process that dies is named, with its last lines and its whole log.
        gateway_pid = int((run_dir / "pids" / "gateway.pid").read_text())
        os.kill(gateway_pid, signal.SIGKILL)
        text = wait_for(output, "stopping everything", run, timeout=30)
        assert "== gateway stopped (signal 9); the last lines of its log:" in text
        assert f"== the whole log: {run_dir}/logs/gateway.log" in text
        assert run.wait(timeout=30) == 1
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGTERM)
            run.wait(timeout=30)
