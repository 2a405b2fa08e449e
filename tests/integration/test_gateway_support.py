"""Helpers (no tests) for the gateway's end-to-end tests: start the real process, register
an application with the real CLI, wait for readiness."""

from __future__ import annotations

import base64
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.kafka import KafkaSettings
from tests.conftest import kafka_env
from tests.processes import BIN, Process, free_port

# What the gateways of these tests verify status callbacks with.
CALLBACK_SECRET = "test-callback-signature-secret-32-bytes"


def start_gateway(
    settings: KafkaSettings,
    log_dir: Path,
    *,
    bootstrap: str | None = None,
    name: str = "gateway",
    **env: str,
) -> tuple[Process, str]:
    port = free_port()
    full_env = {
        **kafka_env(settings),
        "GATEWAY_PORT": str(port),
        "INBOUND_SIGNATURE_SECRET": CALLBACK_SECRET,
        **env,
    }
    if bootstrap is not None:
        full_env["KAFKA_BOOTSTRAP"] = bootstrap
    process = Process(name, ["dispatch-gateway"], full_env, log_dir)
    process.wait_for_port(port)
    return process, f"http://127.0.0.1:{port}"


def wait_ready(base_url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"{base_url} not ready within {timeout}s")


APP_ARGS = (
    *("--name", "e2e"),
    *("--status-url", "http://127.0.0.1:9/status"),
    *("--final-report-url", "http://127.0.0.1:9/final"),
)


def create_app(settings: KafkaSettings, *extra: str) -> dict[str, Any]:
    result = subprocess.run(
        [str(BIN / "dispatch"), "apps", "create", "--json", *APP_ARGS, *extra],
        env={**os.environ, **kafka_env(settings)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    credentials: dict[str, Any] = orjson.loads(result.stdout)
    return credentials


def basic_auth(app: dict[str, Any]) -> str:
    pair = f"{app['api_key']}:{app['api_secret']}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def post_until_known(
    base_url: str, body: Any, auth: str, timeout: float = 15.0, **headers: str
) -> httpx.Response:
    """POST, retrying while the gateway does not know the application yet (it
    follows the registry, so a new application shows up within seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.post(
            f"{base_url}/v0.1/dispatch",
            content=orjson.dumps(body),
            headers={"Content-Type": "application/json", "Authorization": auth, **headers},
            timeout=10,
        )
        if response.status_code != 401 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)
