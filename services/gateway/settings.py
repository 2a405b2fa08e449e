"""The gateway's settings, all from environment variables (see docs/gateway.md)."""

from __future__ import annotations

from pydantic import Field

from services.gateway.http_protocol import DEFAULT_MAX_HEADER_BYTES
from services.internal_endpoints import TOKEN_VARIABLE
from services.settings import KafkaProcessSettings, secret


class GatewaySettings(KafkaProcessSettings):
    host: str = Field("127.0.0.1", validation_alias="GATEWAY_HOST")
    port: int = Field(8080, ge=0, le=65535, validation_alias="GATEWAY_PORT")
    max_body_bytes: int = Field(1024 * 1024, ge=1, validation_alias="GATEWAY_MAX_BODY_BYTES")
    # A request line and headers larger than this are answered 431.
    max_header_bytes: int = Field(
        DEFAULT_MAX_HEADER_BYTES, ge=1, validation_alias="GATEWAY_MAX_HEADER_BYTES"
    )
    # How long a POST waits for Kafka's acknowledgement before answering 503.
    produce_timeout_s: float = Field(5.0, gt=0, validation_alias="GATEWAY_PRODUCE_TIMEOUT_S")
    # Per-application token bucket; 0 turns rate limiting off.
    rate_limit_per_s: float = Field(500.0, ge=0, validation_alias="GATEWAY_RATE_LIMIT_PER_S")
    rate_limit_burst: int = Field(1000, ge=0, validation_alias="GATEWAY_RATE_LIMIT_BURST")
    idempotency_cache_size: int = Field(  # per application
        10_000, ge=0, validation_alias="GATEWAY_IDEMPOTENCY_CACHE_SIZE"
    )
    # uvicorn worker processes; each holds its own producer, registry,
    # rate limiter and idempotency cache.
    workers: int = Field(1, ge=1, validation_alias="GATEWAY_WORKERS")
    # Producer batching: a few ms of linger puts many dispatches in one
    # produce request, which is most of the CPU saved per dispatch.
    producer_linger_ms: int = Field(5, ge=0, validation_alias="GATEWAY_PRODUCER_LINGER_MS")
    # Clock skew tolerated on a Bearer JWT's iat, nbf and exp.
    jwt_leeway_s: float = Field(30.0, ge=0, validation_alias="GATEWAY_JWT_LEEWAY_S")
    # The read side's internal API, behind GET /v1/dispatch/... and the
    # status callback's lookups.
    projector_url: str = Field("http://127.0.0.1:8070", validation_alias="PROJECTOR_URL")
    # Guards /metrics (always when set; when listening beyond loopback,
    # /metrics is refused to everyone without it).
    internal_token: str = secret(TOKEN_VARIABLE)
