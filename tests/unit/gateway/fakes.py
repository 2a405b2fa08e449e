"""Small fakes for the gateway's unit tests: an in-memory registry and an
event log that records what it was asked to append."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from events.applications import ApplicationRegistered
from events.dispatch import DispatchEvent
from services.applications.credentials import hash_secret
from services.gateway.event_log import EventLogUnavailable

API_KEY = "key-1"
API_SECRET = "s3cret-s3cret-s3cret"


def valid_dispatch() -> dict[str, Any]:
    return {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "whatsapp", "number": "447700900001"},
                "to": {"type": "whatsapp", "number": "447700900000"},
                "message": {"content": {"type": "text", "text": "Your code is 1234"}},
                "failover": {"expiry_time": 600, "condition_status": "read"},
            },
            {
                "from": {"type": "sms", "number": "447700900001"},
                "to": {"type": "sms", "number": "447700900000"},
                "message": {"content": {"type": "text", "text": "Your code is 1234"}},
            },
        ],
    }


def make_app(
    app_id: str = "app-1",
    api_key: str = API_KEY,
    secret: str = API_SECRET,
    public_key_pem: str | None = None,
) -> ApplicationRegistered:
    return ApplicationRegistered(
        application_id=app_id,
        name=app_id,
        api_key=api_key,
        api_secret_hash=hash_secret(secret),
        status_url="http://127.0.0.1:1/status",
        final_report_url="http://127.0.0.1:1/final",
        public_key_pem=public_key_pem,
        signature_secret="sig",
    )


def basic(api_key: str = API_KEY, secret: str = API_SECRET) -> str:
    return "Basic " + base64.b64encode(f"{api_key}:{secret}".encode()).decode()


class FakeRegistry:
    def __init__(self, *apps: ApplicationRegistered, loaded: bool = True) -> None:
        self.apps = {a.application_id: a for a in apps}
        self.loaded = loaded

    def get(self, application_id: str) -> ApplicationRegistered | None:
        return self.apps.get(application_id)

    def by_api_key(self, api_key: str) -> ApplicationRegistered | None:
        return next((a for a in self.apps.values() if a.api_key == api_key), None)


class FakeEventLog:
    def __init__(self) -> None:
        self.appended: list[DispatchEvent] = []
        self.available = True
        self.delay_s = 0.0

    async def append(self, event: DispatchEvent) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if not self.available:
            raise EventLogUnavailable("broker down")
        self.appended.append(event)

    async def reachable(self) -> bool:
        return self.available
