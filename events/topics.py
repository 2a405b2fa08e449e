"""Topic names, in one place. ``DISPATCH_TOPIC_PREFIX`` lets several isolated
deployments (or test runs) share one broker."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    events: str
    send: str
    webhooks: str
    applications: str
    dead_letters: str

    @classmethod
    def from_prefix(cls, prefix: str = "") -> Topics:
        return cls(
            events=f"{prefix}dispatch.events",
            send=f"{prefix}dispatch.send",
            webhooks=f"{prefix}dispatch.webhooks",
            applications=f"{prefix}dispatch.applications",
            dead_letters=f"{prefix}dispatch.dead-letters",
        )

    @classmethod
    def from_env(cls) -> Topics:
        return cls.from_prefix(os.environ.get("DISPATCH_TOPIC_PREFIX", ""))
