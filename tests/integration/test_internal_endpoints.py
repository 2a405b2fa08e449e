"""Internal endpoints on the real processes: the processor's metrics and the
projector's read API listen on loopback by default; bound elsewhere, the
projector refuses to start without DISPATCH_INTERNAL_TOKEN and, with it,
answers only requests that carry it."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from services.kafka import KafkaSettings
from tests.conftest import kafka_env
from tests.integration.processor_helpers import start_processor
from tests.processes import BIN, Process, free_port

pytestmark = pytest.mark.kafka

TOKEN = "internal-token-for-the-test-of-32-bytes"


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (from /proc)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address if width == 32 else ".".join(
                    str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0)
                ))  # fmt: skip
    return found


def wait_listening(process: Process, port: int, timeout: float = 90) -> set[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if addresses := listening_addresses(port):
            return addresses
        assert process.alive(), process.log()[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port}:\n{process.log()[-3000:]}")


def test_processor_metrics_listen_on_loopback_by_default(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    port = free_port()
    processor = start_processor(
        kafka_settings, tmp_path / "data", tmp_path, PROCESSOR_METRICS_PORT=str(port)
    )
    processes.append(processor)
    assert wait_listening(processor, port) == {"127.0.0.1"}
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 200


def _projector_env(settings: KafkaSettings, tmp_path: Path, port: int) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_INTERNAL")}
    return {
        **inherited,
        **kafka_env(settings),
        "PROJECTOR_PORT": str(port),
        "PROJECTOR_DB": str(tmp_path / "projections.sqlite3"),
        "PROJECTOR_HOST": "0.0.0.0",
    }


def test_a_projector_bound_beyond_loopback_needs_a_token(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(BIN / "dispatch-projector")],
        env=_projector_env(kafka_settings, tmp_path, free_port()),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "DISPATCH_INTERNAL_TOKEN" in result.stdout + result.stderr


def test_with_a_token_the_projector_answers_only_requests_carrying_it(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    port = free_port()
    env = {**_projector_env(kafka_settings, tmp_path, port), "DISPATCH_INTERNAL_TOKEN": TOKEN}
    projector = Process("projector", ["dispatch-projector"], env, tmp_path)
    processes.append(projector)
    projector.wait_for_port(port)
    base = f"http://127.0.0.1:{port}"
    path = "/internal/dispatches/00000000-0000-0000-0000-000000000000"
    assert httpx.get(base + path, timeout=5).status_code == 401
    wrong = httpx.get(base + path, headers={"Authorization": "Bearer guess"}, timeout=5)
    assert wrong.status_code == 401
    right = httpx.get(base + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert right.status_code == 404  # through: no such dispatch
    assert httpx.get(base + "/healthz", timeout=5).status_code == 200  # probes need none
