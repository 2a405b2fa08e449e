"""The Dispatch-era official Node SDK (npm ``nexmo`` 2.7.0-beta-1) works
against the gateway unchanged: its JWT carries only ``iat``, ``jti`` and
``application_id`` (no ``exp``), which Vonage's contract accepts for 15
minutes. The SDK is installed into ``.local/`` on first use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from events.codec import decode_event
from events.dispatch import WorkflowRequested
from services.kafka import KafkaSettings
from tests.integration.test_gateway_support import create_app, start_gateway, wait_ready
from tests.kafka_helpers import read_records
from tests.processes import Process

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
SDK_DIR = ROOT / ".local" / "nexmo-sdk-2.7.0-beta-1"
SCRIPT = Path(__file__).with_name("sdk") / "dispatch_with_nexmo.js"


def _install_sdk() -> Path:
    npm, node = shutil.which("npm"), shutil.which("node")
    assert npm and node, "the SDK compatibility test needs Node.js and npm on PATH"
    if not (SDK_DIR / "node_modules" / "nexmo" / "package.json").exists():
        SDK_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--prefix", str(SDK_DIR),
             "nexmo@2.7.0-beta-1"],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    return SDK_DIR / "node_modules"


async def test_the_dispatch_era_node_sdk_creates_a_dispatch(
    kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path
) -> None:
    node_modules = _install_sdk()
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_file, public_file = tmp_path / "private.pem", tmp_path / "public.pem"
    private_file.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_file.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    app = create_app(kafka_settings, "--public-key-file", str(public_file))
    # Started after the application exists, so ready means it knows it.
    gateway, base_url = start_gateway(kafka_settings, tmp_path)
    processes.append(gateway)
    wait_ready(base_url)
    host, port = base_url.removeprefix("http://").split(":")

    def run_sdk() -> dict[str, object]:
        result = subprocess.run(
            ["node", str(SCRIPT)],
            env={
                **os.environ,
                "NODE_PATH": str(node_modules),
                "API_KEY": app["api_key"],
                "API_SECRET": app["api_secret"],
                "APPLICATION_ID": app["application_id"],
                "PRIVATE_KEY_FILE": str(private_file),
                "GATEWAY_HOST": host,
                "GATEWAY_PORT": port,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        outcome: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
        return outcome

    outcome = run_sdk()
    assert outcome["error"] is None, outcome
    response = outcome["response"]
    assert isinstance(response, dict)
    dispatch_uuid = response["dispatch_uuid"]

    records = await read_records(
        kafka_settings, kafka_settings.topics.events, until=lambda r: len(r) >= 1, timeout=10
    )
    (event,) = [decode_event(r.value) for r in records]
    assert isinstance(event, WorkflowRequested)
    assert str(event.dispatch_uuid) == dispatch_uuid
    assert event.application_id == app["application_id"]
