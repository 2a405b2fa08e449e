"""Topic names, in one place. A prefix (``DISPATCH_TOPIC_PREFIX``, read by
:class:`services.settings.KafkaSettings`) lets several isolated deployments
(or test runs) share one broker."""

from __future__ import annotations

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
