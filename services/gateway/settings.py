"""The gateway's configuration, all from environment variables (see docs/gateway.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from services.internal_endpoints import internal_token
from services.kafka import KafkaSettings


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, str(default)))


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


@dataclass(frozen=True)
class GatewaySettings:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    # How long a POST waits for Kafka's acknowledgement before answering 503.
    produce_timeout_s: float = 5.0
    # Per-application token bucket; 0 turns rate limiting off.
    rate_limit_per_s: float = 500.0
    rate_limit_burst: int = 1000
    idempotency_cache_size: int = 10_000  # per application
    # uvicorn worker processes; each holds its own producer, registry,
    # rate limiter and idempotency cache.
    workers: int = 1
    # Producer batching: a few ms of linger puts many dispatches in one
    # produce request, which is most of the CPU saved per dispatch.
    producer_linger_ms: int = 5
    # Clock skew tolerated on a Bearer JWT's iat, nbf and exp.
    jwt_leeway_s: float = 30.0
    # Guards /metrics (always when set; when listening beyond loopback,
    # /metrics is refused to everyone without it).
    internal_token: str = field(default="", repr=False)

    @classmethod
    def from_env(cls) -> GatewaySettings:
        return cls(
            kafka=KafkaSettings.from_env(),
            host=os.environ.get("GATEWAY_HOST", "127.0.0.1"),
            port=_env_int("GATEWAY_PORT", 8080),
            max_body_bytes=_env_int("GATEWAY_MAX_BODY_BYTES", 1024 * 1024),
            produce_timeout_s=_env_float("GATEWAY_PRODUCE_TIMEOUT_S", 5.0),
            rate_limit_per_s=_env_float("GATEWAY_RATE_LIMIT_PER_S", 500.0),
            rate_limit_burst=_env_int("GATEWAY_RATE_LIMIT_BURST", 1000),
            idempotency_cache_size=_env_int("GATEWAY_IDEMPOTENCY_CACHE_SIZE", 10_000),
            workers=_env_int("GATEWAY_WORKERS", 1),
            producer_linger_ms=_env_int("GATEWAY_PRODUCER_LINGER_MS", 5),
            jwt_leeway_s=_env_float("GATEWAY_JWT_LEEWAY_S", 30.0),
            internal_token=internal_token(),
        )
