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

import os
import ssl
from dataclasses import dataclass, field
from typing import Any

from services.secret_env import env_secret

PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})


class KafkaSecurityError(ValueError):
    pass


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    ca_file: str = ""
    mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: str = field(default="", repr=False)

    @classmethod
    def from_env(cls) -> KafkaSecurity:
        security = cls(
            protocol=os.environ.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
            ca_file=os.environ.get("KAFKA_SSL_CAFILE", ""),
            mechanism=os.environ.get("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512").upper(),
            username=os.environ.get("KAFKA_SASL_USERNAME", ""),
            password=env_secret("KAFKA_SASL_PASSWORD"),
        )
        if security.protocol not in PROTOCOLS:
            raise KafkaSecurityError(f"KAFKA_SECURITY_PROTOCOL must be one of {sorted(PROTOCOLS)}")
        if security.sasl and not (security.username and security.password):
            raise KafkaSecurityError(
                f"{security.protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        return security

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
