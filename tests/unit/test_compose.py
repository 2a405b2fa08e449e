"""compose.yaml stays true to the package: one service per process entry point,
each running an entry point that exists, and the broker image on the same Kafka
version as the local broker."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _entry_points() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["scripts"])


def _services() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load((ROOT / "compose.yaml").read_text())[
        "services"
    ]
    return services


def test_every_service_runs_an_entry_point_of_the_package() -> None:
    entry_points = _entry_points()
    for name, service in _services().items():
        if name == "kafka":
            continue
        command = service["command"]
        assert isinstance(command, list) and command, f"{name} has no command"
        assert command[0] in entry_points, f"{name} runs {command[0]!r}, not an entry point"


def test_every_process_entry_point_has_a_service() -> None:
    processes = {ep for ep in _entry_points() if ep != "dispatch"}  # the CLI is not a process
    commands = {
        service["command"][0]  # type: ignore[index]
        for name, service in _services().items()
        if name != "kafka" and service.get("restart") != "no"  # one-shot CLI runs
    }
    assert processes == commands


def test_broker_image_matches_the_local_broker_version() -> None:
    pom = (ROOT / "broker" / "pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert match is not None
    assert _services()["kafka"]["image"] == f"apache/kafka:{match.group(1)}"


def test_callbacks_are_signed_with_a_generated_secret_and_ports_are_on_loopback() -> None:
    services = _services()
    init = services["secrets"]
    assert init["command"][:3] == ["dispatch", "secrets", "generate"]  # type: ignore[index]
    callback_secret, internal_token, keys = init["command"][3:]  # type: ignore[index]
    for name, variable, secret_file in (
        ("gateway", "INBOUND_SIGNATURE_SECRET_FILE", callback_secret),
        ("simulator", "SIMULATOR_SIGNATURE_SECRET_FILE", callback_secret),
        ("gateway", "DISPATCH_INTERNAL_TOKEN_FILE", internal_token),
        ("projector", "DISPATCH_INTERNAL_TOKEN_FILE", internal_token),
        ("webhooks", "DISPATCH_SECRETS_KEYS_FILE", keys),
        ("gateway", "DISPATCH_SECRETS_KEYS_FILE", keys),
    ):
        service = services[name]
        assert service["environment"][variable] == secret_file  # type: ignore[index]
        depends = service["depends_on"]["secrets"]  # type: ignore[index]
        assert depends["condition"] == "service_completed_successfully"
    for name, service in services.items():
        for port in service.get("ports", []):  # type: ignore[attr-defined]
            assert str(port).startswith("127.0.0.1:"), (name, port)
