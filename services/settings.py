"""Configuration from the environment, typed and validated once, at start.

Each process has one settings class (a pydantic-settings model) whose fields
are read from the environment variables named by their aliases, with the
defaults the docs list. Constructing one by field name (``GatewaySettings(port=0)``)
sets those fields and reads the rest from the environment, as tests and
benchmarks do.

A value that does not fit its field stops the process before it touches
anything: :func:`exit_on_bad_settings` prints one line naming the variable and
the reason (``DISPATCH_PARTITIONS: Input should be a valid integer ... (got
'eight')``) and exits with status 2, without a traceback.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from events.topics import Topics

SECRET_FROM_FILE = "secret_from_file"


class SettingsError(ValueError):
    """The environment holds a value a process cannot run with."""


class EnvironmentSettings(BaseSettings):
    """The base of every process's settings class."""

    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        extra="ignore",
        populate_by_name=True,
    )

    @classmethod
    def from_env(cls) -> Self:
        """The settings the environment holds; SettingsError naming each bad variable."""
        try:
            return cls()
        except ValidationError as exc:
            raise SettingsError(describe(exc, cls)) from None

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Self:
        # A secret's variable may be empty or unset and its ``_FILE`` twin set.
        for name, info in type(self).model_fields.items():
            extra = info.json_schema_extra
            variable = extra.get(SECRET_FROM_FILE) if isinstance(extra, dict) else None
            if not isinstance(variable, str) or getattr(self, name):
                continue
            path = os.environ.get(f"{variable}_FILE", "")
            if not path:
                continue
            try:
                value = Path(path).read_text().strip()
            except OSError as exc:
                raise ValueError(f"{variable}_FILE: cannot read {path}: {exc}") from None
            object.__setattr__(self, name, value)  # frozen: set once, while validating
        return self


def secret(variable: str) -> Any:
    """A secret field: ``$variable``, else the stripped contents of the file
    ``$<variable>_FILE`` names (how compose and Kubernetes hand secrets over
    without putting them in a process listing or a manifest), else empty."""
    return Field(
        default="",
        validation_alias=variable,
        repr=False,
        json_schema_extra={SECRET_FROM_FILE: variable},
    )


def describe(exc: ValidationError, settings: type[BaseSettings]) -> str:
    """One line per bad variable: its name, the reason, and what it held
    (unless it holds a secret)."""
    secrets = {
        info.validation_alias
        for info in settings.model_fields.values()
        if not info.repr and isinstance(info.validation_alias, str)
    }
    lines = []
    for error in exc.errors():
        reason = str(error["msg"]).removeprefix("Value error, ")
        variables = ".".join(str(part) for part in error["loc"])
        if not variables:  # a check across several variables names them itself
            lines.append(reason)
            continue
        shown = "" if variables in secrets else f" (got {error['input']!r})"
        lines.append(f"{variables}: {reason}{shown}")
    return "; ".join(lines)


@contextlib.contextmanager
def exit_on_bad_settings() -> Iterator[None]:
    """Turn a SettingsError into one line on stderr and exit status 2."""
    try:
        yield
    except SettingsError as exc:
        print(f"refusing to start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _topics(value: object) -> object:
    # The environment gives the prefix; code and tests may pass Topics itself.
    return Topics.from_prefix(value) if isinstance(value, str) else value


def _none_if_blank(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


def _one_if_blank(value: object) -> object:
    return 1 if isinstance(value, str) and not value.strip() else value


class KafkaSettings(EnvironmentSettings):
    """Where the broker is and how the project's topics are laid out: shared by
    every process that talks to Kafka (how it authenticates is
    :class:`services.kafka_security.KafkaSecurity`)."""

    bootstrap_servers: str = Field("127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP")
    # Partitions of dispatch.events (and so of the processor's tables); every
    # event of one dispatch lands on one partition, in order.
    partitions: int = Field(8, ge=1, validation_alias="DISPATCH_PARTITIONS")
    # DISPATCH_TOPIC_PREFIX lets several isolated deployments (or test runs)
    # share one broker.
    topics: Annotated[Topics, NoDecode, BeforeValidator(_topics)] = Field(
        default_factory=Topics.from_prefix, validation_alias="DISPATCH_TOPIC_PREFIX"
    )
    # Copies of every partition of every topic the project creates, and how many
    # of them must have a write before it counts (with acks=all). 1 / broker
    # default on a single broker; 3 / 2 on a cluster (see docs/operations.md).
    replication_factor: Annotated[int, BeforeValidator(_one_if_blank)] = Field(
        1, ge=1, validation_alias="DISPATCH_REPLICATION_FACTOR"
    )
    min_insync_replicas: Annotated[int | None, BeforeValidator(_none_if_blank)] = Field(
        None, validation_alias="DISPATCH_MIN_INSYNC_REPLICAS"
    )
    # How long a fetch that follows one with records may wait for more (see
    # ``services/fetch_wait.py``): under a trickle of traffic each hop may take
    # up to this much longer, and every process and the broker handle several
    # records per request instead of one. 0: a fetch returns with its first record.
    fetch_gather_ms: int = Field(20, ge=0, le=1_000, validation_alias="KAFKA_FETCH_GATHER_MS")

    @model_validator(mode="after")
    def _min_isr_within_replicas(self) -> Self:
        min_isr = self.min_insync_replicas
        if min_isr is not None and not 1 <= min_isr <= self.replication_factor:
            # More than the replicas there are would refuse every write.
            raise ValueError(
                f"DISPATCH_MIN_INSYNC_REPLICAS must be between 1 and the replication "
                f"factor ({self.replication_factor}), not {min_isr}"
            )
        return self

    @property
    def topic_prefix(self) -> str:
        return self.topics.events.removesuffix("dispatch.events")


PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


class KafkaSecurity(EnvironmentSettings):
    """How every Kafka client reaches the broker (see services/kafka_security.py)."""

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


class KafkaProcessSettings(EnvironmentSettings):
    """The base of the settings of a process that talks to Kafka."""

    # Named in lower case so no environment variable can shadow it: it is
    # built from its own variables by KafkaSettings.
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    security: KafkaSecurity = Field(default_factory=KafkaSecurity, repr=False)
