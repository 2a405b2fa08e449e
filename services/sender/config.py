"""The sender's configuration, from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

AuthMode = Literal["basic", "jwt", "none"]


@dataclass(frozen=True)
class SenderConfig:
    group: str = "dispatch-sender"
    provider_base_url: str = "http://127.0.0.1:8090"
    auth: AuthMode = "basic"
    api_key: str = ""
    api_secret: str = ""
    application_id: str = ""
    private_key_pem: str = ""
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 10.0
    retry_budget_s: float = 60.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 10.0
    concurrency: int = 200
    commit_interval_s: float = 0.5

    @classmethod
    def from_env(cls) -> SenderConfig:
        env = os.environ
        auth = env.get("PROVIDER_AUTH", "basic").lower()
        if auth not in ("basic", "jwt", "none"):
            raise ValueError(f"PROVIDER_AUTH must be basic, jwt or none, not {auth!r}")
        key_path = env.get("PROVIDER_PRIVATE_KEY_PATH", "")
        private_key = ""
        if key_path:
            with open(key_path) as f:
                private_key = f.read()
        prefix = env.get("DISPATCH_TOPIC_PREFIX", "")
        return cls(
            # The prefix keeps deployments sharing a broker in separate groups.
            group=prefix + env.get("SENDER_GROUP", "dispatch-sender"),
            provider_base_url=env.get("PROVIDER_BASE_URL", "http://127.0.0.1:8090").rstrip("/"),
            auth=auth,  # type: ignore[arg-type]
            api_key=env.get("PROVIDER_API_KEY", ""),
            api_secret=env.get("PROVIDER_API_SECRET", ""),
            application_id=env.get("PROVIDER_APPLICATION_ID", ""),
            private_key_pem=private_key,
            connect_timeout_s=float(env.get("PROVIDER_CONNECT_TIMEOUT_S", "3")),
            read_timeout_s=float(env.get("PROVIDER_READ_TIMEOUT_S", "10")),
            retry_budget_s=float(env.get("SENDER_RETRY_BUDGET_S", "60")),
            retry_initial_s=float(env.get("SENDER_RETRY_INITIAL_S", "0.5")),
            retry_max_s=float(env.get("SENDER_RETRY_MAX_S", "10")),
            concurrency=int(env.get("SENDER_CONCURRENCY", "200")),
            commit_interval_s=float(env.get("SENDER_COMMIT_INTERVAL_S", "0.5")),
        )
