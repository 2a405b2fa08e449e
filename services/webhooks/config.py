"""The deliverer's settings, all from the environment (documented in docs/webhooks.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BeforeValidator, Field

from services.settings import KafkaProcessSettings


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 5.0
    max_s: float = 900.0
    give_up_s: float = 86_400.0


def _yes(value: object) -> object:
    return value.lower() in {"1", "true", "yes"} if isinstance(value, str) else value


class WebhookSettings(KafkaProcessSettings):
    retry_initial_s: float = Field(5.0, gt=0, validation_alias="WEBHOOK_RETRY_INITIAL_S")
    retry_max_s: float = Field(900.0, gt=0, validation_alias="WEBHOOK_RETRY_MAX_S")
    give_up_s: float = Field(86_400.0, gt=0, validation_alias="WEBHOOK_GIVE_UP_S")
    max_in_flight_per_endpoint: int = Field(
        16, ge=1, validation_alias="WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT"
    )
    connect_timeout_s: float = Field(5.0, gt=0, validation_alias="WEBHOOK_CONNECT_TIMEOUT_S")
    read_timeout_s: float = Field(10.0, gt=0, validation_alias="WEBHOOK_READ_TIMEOUT_S")
    max_response_bytes: int = Field(64 * 1024, ge=0, validation_alias="WEBHOOK_MAX_RESPONSE_BYTES")
    allow_private: Annotated[bool, BeforeValidator(_yes)] = Field(
        False, validation_alias="WEBHOOK_ALLOW_PRIVATE"
    )
    # Default: dispatch-webhooks, prefixed like the topics, so isolated
    # deployments on one broker never share a consumer group.
    consumer_group_name: str = Field("", validation_alias="WEBHOOK_CONSUMER_GROUP")
    # How long finished webhooks stay in the state topic (and so can be
    # redelivered from the CLI, and have repeated commands dropped).
    state_retention_s: float = Field(
        7 * 86_400.0, gt=0, validation_alias="WEBHOOK_STATE_RETENTION_S"
    )
    # How soon a crashed deliverer's partitions move to a live one.
    session_timeout_ms: int = Field(10_000, ge=1, validation_alias="WEBHOOK_SESSION_TIMEOUT_MS")
    # A command's offset is committed once a state record of it is durable:
    # the outcome of its first attempt, or, if that attempt has not concluded
    # this long after the command was read, a pending record written then.
    # Bounds how far commits lag behind a slow or blocked endpoint, and how
    # long a rebalance waits for attempts under way to be recorded.
    pending_record_after_s: float = Field(
        1.0, gt=0, validation_alias="WEBHOOK_PENDING_RECORD_AFTER_S"
    )
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(self.retry_initial_s, self.retry_max_s, self.give_up_s)

    @property
    def consumer_group(self) -> str:
        return self.consumer_group_name or self.kafka.topic_prefix + "dispatch-webhooks"
