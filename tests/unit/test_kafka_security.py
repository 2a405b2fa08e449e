"""The one place that turns Kafka security settings into client options."""

from __future__ import annotations

import ssl

import faust
import pytest

from services.kafka_security import (
    KafkaSecurity,
    KafkaSecurityError,
    client_options,
    faust_credentials,
)


def test_plaintext_adds_nothing() -> None:
    assert client_options(KafkaSecurity()) == {}
    assert faust_credentials(KafkaSecurity()) is None


def test_sasl_ssl_gives_verified_tls_and_scram_to_aiokafka_and_faust() -> None:
    security = KafkaSecurity(protocol="SASL_SSL", username="dispatch", password="pw")
    options = client_options(security)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("dispatch", "pw")
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    credentials = faust_credentials(security)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.ssl_context is not None
    assert "pw" not in repr(security)


def test_sasl_without_credentials_or_an_unknown_protocol_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(KafkaSecurityError, match="KAFKA_SASL_USERNAME"):
        KafkaSecurity.from_env()
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(KafkaSecurityError, match="must be one of"):
        KafkaSecurity.from_env()
