"""The simulator's configuration, from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from services.secret_env import env_secret


@dataclass(frozen=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 8090
    # Where statuses are posted; empty means none are posted.
    callback_url: str = ""
    # Every scripted delay is divided by this (10 → ten times faster).
    speed: float = 1.0
    seed: int | None = None
    rules_path: str = ""
    signature_secret: str = ""
    # Added to every answer to /v0.1/messages (not scaled by speed): a network.
    latency_ms: float = 0.0
    # When set, sends must carry Basic credentials matching these (a Bearer
    # token is accepted as is).
    api_key: str = ""
    api_secret: str = ""
    callback_attempts: int = 8
    callback_timeout_s: float = 5.0

    @classmethod
    def from_env(cls) -> SimulatorConfig:
        env = os.environ
        seed = env.get("SIMULATOR_SEED", "")
        return cls(
            host=env.get("SIMULATOR_HOST", "127.0.0.1"),
            port=int(env.get("SIMULATOR_PORT", "8090")),
            callback_url=env.get("SIMULATOR_CALLBACK_URL", ""),
            speed=float(env.get("SIMULATOR_SPEED", "1")),
            seed=int(seed) if seed else None,
            rules_path=env.get("SIMULATOR_RULES", ""),
            signature_secret=env_secret("SIMULATOR_SIGNATURE_SECRET"),
            latency_ms=float(env.get("SIMULATOR_LATENCY_MS", "0")),
            api_key=env.get("SIMULATOR_API_KEY", ""),
            api_secret=env.get("SIMULATOR_API_SECRET", ""),
            callback_attempts=int(env.get("SIMULATOR_CALLBACK_ATTEMPTS", "8")),
            callback_timeout_s=float(env.get("SIMULATOR_CALLBACK_TIMEOUT_S", "5")),
        )
