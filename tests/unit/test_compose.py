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


def _cluster_override() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load(
        (ROOT / "compose.cluster.yaml").read_text()
    )["services"]
    return services


def _env(service: dict[str, object]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict)
    return {str(k): str(v) for k, v in env.items()}


def _processes() -> dict[str, dict[str, object]]:
    """Every long-running Dispatch process (not the broker, not one-shot jobs)."""
    return {
        name: service
        for name, service in _services().items()
        if name != "kafka" and service.get("restart") != "no"
    }


def test_every_process_takes_replication_from_configuration() -> None:
    for name, service in _processes().items():
        env = _env(service)
        assert env["DISPATCH_REPLICATION_FACTOR"] == "${DISPATCH_REPLICATION_FACTOR:-1}", name
        assert env["DISPATCH_MIN_INSYNC_REPLICAS"] == "${DISPATCH_MIN_INSYNC_REPLICAS:-}", name


def test_the_cluster_profile_runs_three_brokers_that_form_one_quorum() -> None:
    base, override = _services(), _cluster_override()
    brokers = {name: s for name, s in override.items() if name.startswith("kafka")}
    assert set(brokers) == {"kafka", "kafka-2", "kafka-3"}
    # compose merges the override's environment into compose.yaml's.
    envs = {name: {**_env(base.get(name, {})), **_env(s)} for name, s in brokers.items()}
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs.values()}
    assert voters == {"1@kafka:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len({env["CLUSTER_ID"] for env in envs.values()}) == 1
    assert sorted(env["KAFKA_NODE_ID"] for env in envs.values()) == ["1", "2", "3"]
    for name, env in envs.items():
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3", name
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2", name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2", name
    for name in ("kafka-2", "kafka-3"):
        assert brokers[name]["image"] == base["kafka"]["image"]


def test_the_cluster_profile_replicates_every_process_topics_three_times() -> None:
    base, override = _services(), _cluster_override()
    processes = set(_processes())
    assert processes <= set(override)
    for name in processes:
        env = {**_env(base[name]), **_env(override[name])}
        assert env["KAFKA_BOOTSTRAP"] == "kafka:9092,kafka-2:9092,kafka-3:9092", name
        assert env["DISPATCH_REPLICATION_FACTOR"] == "3", name
        assert env["DISPATCH_MIN_INSYNC_REPLICAS"] == "2", name
        depends = override[name]["depends_on"]
        assert isinstance(depends, dict)
        assert set(depends) == {"kafka", "kafka-2", "kafka-3"}, name


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
