"""The deliverer's settings, all from the environment (documented in docs/webhooks.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return float(env.get(name, default))


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(env.get(name, default))


def _client(name: str) -> str:
    if name not in {"httpx", "aiohttp"}:
        raise ValueError(f"WEBHOOK_HTTP_CLIENT must be httpx or aiohttp, not {name!r}")
    return name


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 5.0
    max_s: float = 900.0
    give_up_s: float = 86_400.0


@dataclass(frozen=True)
class WebhookSettings:
    retry: RetryPolicy = RetryPolicy()
    max_in_flight_per_endpoint: int = 16
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    max_response_bytes: int = 64 * 1024
    allow_private: bool = False
    consumer_group: str = "dispatch-webhooks"
    # aiohttp by default: at 64 requests in flight httpx spent more CPU on its
    # connection pool than on the requests (see docs/webhooks.md).
    http_client: str = "aiohttp"  # or "httpx"
    # How long finished webhooks stay in the state topic (and so can be
    # redelivered from the CLI, and have repeated commands dropped).
    state_retention_s: float = 7 * 86_400.0
    # How soon a crashed deliverer's partitions move to a live one.
    session_timeout_ms: int = 10_000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookSettings:
        e = os.environ if env is None else env
        return cls(
            retry=RetryPolicy(
                initial_s=_float(e, "WEBHOOK_RETRY_INITIAL_S", 5.0),
                max_s=_float(e, "WEBHOOK_RETRY_MAX_S", 900.0),
                give_up_s=_float(e, "WEBHOOK_GIVE_UP_S", 86_400.0),
            ),
            max_in_flight_per_endpoint=_int(e, "WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT", 16),
            connect_timeout_s=_float(e, "WEBHOOK_CONNECT_TIMEOUT_S", 5.0),
            read_timeout_s=_float(e, "WEBHOOK_READ_TIMEOUT_S", 10.0),
            max_response_bytes=_int(e, "WEBHOOK_MAX_RESPONSE_BYTES", 64 * 1024),
            allow_private=e.get("WEBHOOK_ALLOW_PRIVATE", "0").lower() in {"1", "true", "yes"},
            # Prefixed like the topics, so isolated deployments on one broker
            # never share a consumer group.
            consumer_group=e.get(
                "WEBHOOK_CONSUMER_GROUP", e.get("DISPATCH_TOPIC_PREFIX", "") + "dispatch-webhooks"
            ),
            state_retention_s=_float(e, "WEBHOOK_STATE_RETENTION_S", 7 * 86_400.0),
            http_client=_client(e.get("WEBHOOK_HTTP_CLIENT", "aiohttp")),
            session_timeout_ms=_int(e, "WEBHOOK_SESSION_TIMEOUT_MS", 10_000),
        )
