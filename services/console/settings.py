"""``dispatch-console``'s settings, from the environment (see docs/console.md)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from projections.store import DEFAULT_SQLITE_PATH
from services.settings import KafkaProcessSettings

MIN_TOKEN_LENGTH = 16
# CONSOLE_PROCESSOR_METRICS_URL unset: the processor's metrics on loopback.
LOOPBACK_METRICS = "loopback"


class ConsoleSettings(KafkaProcessSettings):
    token: str = Field("", repr=False, validation_alias="CONSOLE_TOKEN")
    # The projection store, read only: ``postgresql://...``, or (empty) the
    # SQLite file at ``projector_db``.
    projector_store_url: str = Field("", validation_alias="PROJECTOR_STORE_URL")
    projector_db: str = Field(DEFAULT_SQLITE_PATH, validation_alias="PROJECTOR_DB")
    host: str = Field("127.0.0.1", validation_alias="CONSOLE_HOST")
    port: int = Field(8060, ge=0, le=65535, validation_alias="CONSOLE_PORT")
    # Empty (or None): no timer lateness shown.
    processor_metrics_url: str | None = Field(
        LOOPBACK_METRICS, validation_alias="CONSOLE_PROCESSOR_METRICS_URL"
    )
    processor_metrics_port: int = Field(9102, validation_alias="PROCESSOR_METRICS_PORT")
    sample_interval_s: float = Field(10.0, gt=0, validation_alias="CONSOLE_SAMPLE_INTERVAL_S")
    secure_cookie: bool = Field(False, validation_alias="CONSOLE_SECURE_COOKIE")
    # Sent to the processor's metrics, which need it beyond loopback.
    internal_token: str | None = Field(None, repr=False, validation_alias="DISPATCH_INTERNAL_TOKEN")

    @property
    def store_url(self) -> str:
        return self.projector_store_url.strip() or self.projector_db

    @field_validator("token")
    @classmethod
    def _long_enough(cls, token: str) -> str:
        if len(token) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"CONSOLE_TOKEN must be set to a secret of at least {MIN_TOKEN_LENGTH} "
                "characters (operators sign in with it), e.g. `openssl rand -hex 24`"
            )
        return token

    @model_validator(mode="after")
    def _metrics_url(self) -> Self:
        url = self.processor_metrics_url
        if url == LOOPBACK_METRICS:
            url = f"http://127.0.0.1:{self.processor_metrics_port}/metrics"
        # frozen: set once, while validating
        object.__setattr__(self, "processor_metrics_url", url or None)
        return self
