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
