"""``dispatch apps create`` registers an application on the real broker and
shows its secret once, storing only a salted hash."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest

from events.codec import decode_application
from services.applications.credentials import verify_secret
from services.applications.sealing import SecretKeys
from services.kafka import KafkaSettings
from tests.conftest import TEST_SECRETS_KEYS, kafka_env
from tests.kafka_helpers import read_records
from tests.processes import BIN

pytestmark = pytest.mark.kafka


def run_cli(settings: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "dispatch"), "apps", "create", *args],
        env={**os.environ, **kafka_env(settings)},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_create_prints_credentials_once_and_stores_a_hash(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    result = run_cli(
        kafka_settings,
        "--name", "shop",
        "--status-url", "https://example.com/status",
        "--final-report-url", "https://example.com/final",
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = orjson.loads(result.stdout)
    assert set(shown) == {"application_id", "name", "api_key", "api_secret", "signature_secret"}

    records = await read_records(
        kafka_settings, kafka_settings.topics.applications, until=lambda r: len(r) >= 1
    )
    (record,) = records
    assert record.key == shown["application_id"].encode()
    assert shown["api_secret"].encode() not in record.value
    stored = decode_application(record.value)
    assert stored.api_key == shown["api_key"]
    # The signature secret is stored sealed (docs/security.md), never in clear.
    assert shown["signature_secret"].encode() not in record.value
    assert (
        SecretKeys.parse(TEST_SECRETS_KEYS).open(stored.signature_secret)
        == (shown["signature_secret"])
    )
    assert stored.status_url == "https://example.com/status"
    assert verify_secret(shown["api_secret"], stored.api_secret_hash)
    assert not verify_secret(shown["api_secret"] + "x", stored.api_secret_hash)


async def test_bad_url_or_key_file_is_refused_before_anything_is_written(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    bad_url = run_cli(
        kafka_settings,
        "--name",
        "n",
        "--status-url",
        "ftp://x",
        "--final-report-url",
        "https://x.io",
    )
    assert bad_url.returncode != 0
    assert "status-url" in bad_url.stderr
    not_a_key = tmp_path / "key.pem"
    not_a_key.write_text("hello")
    bad_key = run_cli(
        kafka_settings,
        "--name", "n",
        "--status-url", "https://x.io/s",
        "--final-report-url", "https://x.io/f",
        "--public-key-file", str(not_a_key),
    )  # fmt: skip
    assert bad_key.returncode != 0
    assert "public key" in bad_key.stderr
    records = await read_records(
        kafka_settings, kafka_settings.topics.applications, until=lambda r: False, timeout=2
    )
    assert records == []
