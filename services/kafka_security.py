"""How every Kafka client of the project reaches the broker: PLAINTEXT (the
local default), or TLS and/or SASL (SCRAM) when configured. The one place
that turns the configuration into options, for aiokafka clients
(:func:`client_options`) and for faust (:func:`faust_credentials`).

Environment:
``KAFKA_SECURITY_PROTOCOL`` PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL;
``KAFKA_SSL_CAFILE`` the CA bundle that signed the brokers' certificates
(default: the system's); ``KAFKA_SASL_MECHANISM`` SCRAM-SHA-512 (default),
SCRAM-SHA-256 or PLAIN; ``KAFKA_SASL_USERNAME``; ``KAFKA_SASL_PASSWORD`` (or
``KAFKA_SASL_PASSWORD_FILE``).
"""

from __future__ import annotations

from typing import Any

from services.settings import PROTOCOLS, KafkaSecurity, SettingsError

__all__ = ["PROTOCOLS", "KafkaSecurity", "KafkaSecurityError", "client_options"]

# A bad security setting is a SettingsError like any other.
KafkaSecurityError = SettingsError


def client_options(security: KafkaSecurity | None = None) -> dict[str, Any]:
    """Keyword arguments for an aiokafka producer, consumer or admin client."""
    security = security or KafkaSecurity.from_env()
    if security.protocol == "PLAINTEXT":
        return {}
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.tls:
        options["ssl_context"] = security.ssl_context()
    if security.sasl:
        options.update(
            sasl_mechanism=security.mechanism,
            sasl_plain_username=security.username,
            sasl_plain_password=security.password,
        )
    return options


def faust_credentials(security: KafkaSecurity | None = None) -> Any:
    """``broker_credentials`` for ``faust.App`` (None for PLAINTEXT)."""
    import faust  # imported here: only the processor runs faust

    security = security or KafkaSecurity.from_env()
    if security.sasl:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password,
            ssl_context=security.ssl_context() if security.tls else None,
            mechanism=security.mechanism,
        )
    if security.tls:
        return faust.SSLCredentials(security.ssl_context())
    return None
