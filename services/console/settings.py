"""``dispatch-console``'s configuration, from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from services.kafka import KafkaSettings

MIN_TOKEN_LENGTH = 16


class ConsoleMisconfigured(Exception):
    pass


@dataclass(frozen=True)
class ConsoleSettings:
    token: str
    projector_db: str
    kafka: KafkaSettings
    host: str = "127.0.0.1"
    port: int = 8060
    processor_metrics_url: str | None = None
    sample_interval_s: float = 10.0
    secure_cookie: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConsoleSettings:
        env = os.environ if env is None else env
        token = env.get("CONSOLE_TOKEN", "")
        if len(token) < MIN_TOKEN_LENGTH:
            raise ConsoleMisconfigured(
                f"CONSOLE_TOKEN must be set to a secret of at least {MIN_TOKEN_LENGTH} "
                "characters (operators sign in with it), e.g. `openssl rand -hex 24`"
            )
        metrics_port = env.get("PROCESSOR_METRICS_PORT", "9102")
        return cls(
            token=token,
            projector_db=env.get("PROJECTOR_DB", ".local/projections.sqlite3"),
            kafka=KafkaSettings.from_env(),
            host=env.get("CONSOLE_HOST", "127.0.0.1"),
            port=int(env.get("CONSOLE_PORT", "8060")),
            processor_metrics_url=env.get(
                "CONSOLE_PROCESSOR_METRICS_URL", f"http://127.0.0.1:{metrics_port}/metrics"
            )
            or None,
            sample_interval_s=float(env.get("CONSOLE_SAMPLE_INTERVAL_S", "10")),
            secure_cookie=env.get("CONSOLE_SECURE_COOKIE", "") in ("1", "true"),
        )
