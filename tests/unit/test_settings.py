"""Configuration is read once, typed, and a bad value stops a process at start
with one line naming the variable, before it touches anything."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from services.gateway.settings import GatewaySettings
from services.inbound.settings import InboundSettings
from services.processor.config import ProcessorConfig
from services.settings import KafkaSettings, SettingsError
from tests.processes import BIN


def test_a_bad_value_is_refused_naming_its_variable_and_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISPATCH_PARTITIONS", "eight")
    with pytest.raises(SettingsError) as refused:
        KafkaSettings.from_env()
    message = str(refused.value)
    assert message.startswith("DISPATCH_PARTITIONS: ")
    assert "valid integer" in message and "'eight'" in message


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "http")
    monkeypatch.setenv("GATEWAY_WORKERS", "0")
    with pytest.raises(SettingsError) as refused:
        GatewaySettings.from_env()
    assert "GATEWAY_PORT: " in str(refused.value)
    assert "GATEWAY_WORKERS: Input should be greater than or equal to 1" in str(refused.value)


def test_unset_variables_keep_their_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith(("PROCESSOR_", "GATEWAY_", "DISPATCH_"))]:
        monkeypatch.delenv(name)
    processor = ProcessorConfig.from_env()
    assert (processor.store, processor.tick_interval_s, processor.metrics_port) == (
        "rocksdb://", 0.25, 9102,
    )  # fmt: skip
    assert processor.kafka.partitions == 8 and processor.kafka.topics.events == "dispatch.events"
    assert processor.replication_factor == 1
    gateway = GatewaySettings.from_env()
    assert (gateway.port, gateway.rate_limit_per_s, gateway.max_body_bytes) == (8080, 500, 1 << 20)


def test_a_secret_comes_from_its_file_and_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = "s" * 40
    (tmp_path / "secret").write_text(secret + "\n")
    monkeypatch.delenv("INBOUND_SIGNATURE_SECRET", raising=False)
    monkeypatch.setenv("INBOUND_SIGNATURE_SECRET_FILE", str(tmp_path / "secret"))
    settings = InboundSettings.from_env()
    assert settings.signature_secret == secret
    assert secret not in repr(settings)
    monkeypatch.setenv("INBOUND_SIGNATURE_SECRET", "short")
    with pytest.raises(SettingsError, match="shorter than 32 bytes") as refused:
        InboundSettings.from_env()
    assert "short'" not in str(refused.value)


def test_the_processor_derives_its_changelog_replication_from_the_shared_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISPATCH_REPLICATION_FACTOR", "3")
    monkeypatch.delenv("PROCESSOR_REPLICATION_FACTOR", raising=False)
    assert ProcessorConfig.from_env().replication_factor == 3
    monkeypatch.setenv("PROCESSOR_REPLICATION_FACTOR", "2")
    assert ProcessorConfig.from_env().replication_factor == 2


@pytest.mark.parametrize(
    "process",
    ["dispatch-gateway", "dispatch-processor", "dispatch-sender", "dispatch-webhooks",
     "dispatch-projector", "dispatch-console"],
)  # fmt: skip
def test_a_process_with_a_bad_variable_exits_with_one_line_naming_it(process: str) -> None:
    # No broker is needed: the settings are checked before anything connects.
    env = {**os.environ, "DISPATCH_PARTITIONS": "eight", "CONSOLE_TOKEN": "t" * 20}
    result = subprocess.run(
        [str(BIN / process)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    line = result.stderr.strip()
    assert "\n" not in line
    assert line.startswith("refusing to start: DISPATCH_PARTITIONS: ")
    assert "'eight'" in line


def test_the_simulator_with_a_bad_variable_exits_naming_it() -> None:
    env = {**os.environ, "SIMULATOR_SPEED": "fast"}
    result = subprocess.run(
        [str(BIN / "dispatch-simulator")], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().startswith("refusing to start: SIMULATOR_SPEED: ")
    assert "Traceback" not in result.stderr


def test_kafka_security_is_part_of_every_kafka_process_s_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(SettingsError, match="KAFKA_SECURITY_PROTOCOL must be one of"):
        ProcessorConfig.from_env()
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "dispatch")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw")
    security = GatewaySettings.from_env().security
    assert (security.protocol, security.tls, security.sasl) == ("SASL_SSL", True, True)
