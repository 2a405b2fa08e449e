"""The sender's settings, from the environment (documented in docs/channels.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, model_validator

from services.settings import KafkaProcessSettings

AuthMode = Literal["basic", "jwt", "none"]
WEEK_MS = 7 * 24 * 3600 * 1000


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _without_trailing_slash(value: object) -> object:
    return value.rstrip("/") if isinstance(value, str) else value


class SenderConfig(KafkaProcessSettings):
    group_name: str = Field("dispatch-sender", validation_alias="SENDER_GROUP")
    provider_base_url: Annotated[str, BeforeValidator(_without_trailing_slash)] = Field(
        "http://127.0.0.1:8090", validation_alias="PROVIDER_BASE_URL"
    )
    auth: Annotated[AuthMode, BeforeValidator(_lower)] = Field(
        "basic", validation_alias="PROVIDER_AUTH"
    )
    api_key: str = Field("", validation_alias="PROVIDER_API_KEY")
    api_secret: str = Field("", repr=False, validation_alias="PROVIDER_API_SECRET")
    application_id: str = Field("", validation_alias="PROVIDER_APPLICATION_ID")
    private_key_path: str = Field("", validation_alias="PROVIDER_PRIVATE_KEY_PATH")
    # Read from private_key_path at start.
    private_key_pem: str = Field("", repr=False, exclude=True)
    connect_timeout_s: float = Field(3.0, gt=0, validation_alias="PROVIDER_CONNECT_TIMEOUT_S")
    read_timeout_s: float = Field(10.0, gt=0, validation_alias="PROVIDER_READ_TIMEOUT_S")
    retry_budget_s: float = Field(60.0, ge=0, validation_alias="SENDER_RETRY_BUDGET_S")
    retry_initial_s: float = Field(0.5, gt=0, validation_alias="SENDER_RETRY_INITIAL_S")
    retry_max_s: float = Field(10.0, gt=0, validation_alias="SENDER_RETRY_MAX_S")
    concurrency: int = Field(200, ge=1, validation_alias="SENDER_CONCURRENCY")
    commit_interval_s: float = Field(0.5, gt=0, validation_alias="SENDER_COMMIT_INTERVAL_S")
    # How long the ledger of sends (what makes a send happen at most once) is kept.
    ledger_retention_ms: int = Field(WEEK_MS, ge=1, validation_alias="SENDER_LEDGER_RETENTION_MS")
    # How long in-flight sends get to finish on SIGTERM.
    shutdown_grace_s: float = Field(10.0, ge=0, validation_alias="SENDER_SHUTDOWN_GRACE_S")

    @property
    def group(self) -> str:
        # The prefix keeps deployments sharing a broker in separate groups.
        return self.kafka.topic_prefix + self.group_name

    @model_validator(mode="after")
    def _read_private_key(self) -> Self:
        if self.private_key_path and not self.private_key_pem:
            try:
                pem = Path(self.private_key_path).read_text()
            except OSError as exc:
                raise ValueError(
                    f"PROVIDER_PRIVATE_KEY_PATH: cannot read {self.private_key_path}: {exc}"
                ) from None
            object.__setattr__(self, "private_key_pem", pem)  # frozen: set once, while validating
        return self
