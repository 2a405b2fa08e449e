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

import ssl
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, model_validator

from services.settings import EnvironmentSettings, SettingsError, secret

PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})


# Kept for callers that catch it by this name: a bad security setting is a
# SettingsError like any other.
KafkaSecurityError = SettingsError


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class KafkaSecurity(EnvironmentSettings):
    protocol: Annotated[str, BeforeValidator(_upper)] = Field(
        "PLAINTEXT", validation_alias="KAFKA_SECURITY_PROTOCOL"
    )
    ca_file: str = Field("", validation_alias="KAFKA_SSL_CAFILE")
    mechanism: Annotated[str, BeforeValidator(_upper)] = Field(
        "SCRAM-SHA-512", validation_alias="KAFKA_SASL_MECHANISM"
    )
    username: str = Field("", validation_alias="KAFKA_SASL_USERNAME")
    password: str = secret("KAFKA_SASL_PASSWORD")

    @model_validator(mode="after")
    def _complete(self) -> Self:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"KAFKA_SECURITY_PROTOCOL must be one of {sorted(PROTOCOLS)}")
        if self.sasl and not (self.username and self.password):
            raise ValueError(f"{self.protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD")
        return self

    @property
    def tls(self) -> bool:
        return self.protocol in {"SSL", "SASL_SSL"}

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def ssl_context(self) -> ssl.SSLContext:
        # Certificates and host names verified (create_default_context's default).
        return ssl.create_default_context(cafile=self.ca_file or None)


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
