"""The local broker script fails fast and says why when it cannot start."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_start_fails_fast_when_the_port_is_taken() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [str(ROOT / "broker" / "kafka.sh"), "start"],
            env={**os.environ, "KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(port + 1)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert f"port {port} is already taken" in result.stderr
    assert elapsed < 30


def test_cluster_start_fails_fast_and_names_a_taken_port_of_any_node() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        base = probe.getsockname()[1]
    # Node 2's controller port: KAFKA_PORT + 2 + 2.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 4))
        squatter.listen()
        started = time.monotonic()
        result = subprocess.run(
            [str(ROOT / "broker" / "kafka.sh"), "cluster-start"],
            env={**os.environ, "KAFKA_PORT": str(base)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert f"port {base + 4} is already taken; node 2 cannot start" in result.stderr
    assert elapsed < 30


def test_node_commands_refuse_a_node_that_does_not_exist() -> None:
    result = subprocess.run(
        [str(ROOT / "broker" / "kafka.sh"), "node-kill", "4"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "name a node: 1, 2 or 3" in result.stderr
