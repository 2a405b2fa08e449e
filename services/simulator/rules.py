"""The simulator's script: which outcome a send gets, as pure data and logic.

A rule file maps the last digit of the recipient (phone number, or Messenger
id) to a script: refuse at once, fail the first attempts with a 5xx, or
accept and post a timeline of statuses. Nothing here does I/O, so every
outcome class is testable without a server.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.simulator.default_rules import DEFAULT_RULES

StatusName = Literal["submitted", "delivered", "read", "rejected", "undeliverable"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScriptedError(_Strict):
    code: int
    reason: str


class ScriptedStatus(_Strict):
    # Seconds after the send was accepted (before the speed factor).
    after_s: float = Field(ge=0)
    status: StatusName
    error: ScriptedError | None = None


class Refusal(_Strict):
    http_status: int = Field(ge=400, le=499)
    code: int
    reason: str


class Script(_Strict):
    refuse: Refusal | None = None
    # The first ``fail_attempts`` sends of one client_ref answer ``fail_http_status``.
    fail_attempts: int = Field(default=0, ge=0)
    fail_http_status: int = Field(default=503, ge=500, le=599)
    # Extra time before answering (before the speed factor): a slow provider.
    latency_s: float = Field(default=0, ge=0)
    statuses: list[ScriptedStatus] = Field(default_factory=list)


class Rules(_Strict):
    prices: dict[str, str] = Field(default_factory=dict)
    scripts: dict[str, Script] = Field(default_factory=dict)
    default: Script = Field(default_factory=Script)

    def script_for(self, recipient: str) -> Script:
        last = recipient.strip()[-1:] if recipient.strip() else ""
        return self.scripts.get(last, self.default)

    def price_for(self, channel: str) -> str | None:
        return self.prices.get(channel)


def load_rules(path: str | None) -> Rules:
    """The rules from ``path`` (JSON), or the default script when ``path`` is empty."""
    if not path:
        return Rules.model_validate(DEFAULT_RULES)
    data: Any = json.loads(Path(path).read_text())
    return Rules.model_validate(data)


def recipient_of(message: dict[str, Any]) -> str:
    """The recipient's number, or its Messenger id when it has no number."""
    to = message.get("to")
    if not isinstance(to, dict):
        return ""
    value = to.get("number") or to.get("id") or ""
    return str(value)


def channel_of(message: dict[str, Any]) -> str:
    to = message.get("to")
    if isinstance(to, dict) and isinstance(to.get("type"), str):
        return str(to["type"])
    return "unknown"


@dataclass(frozen=True)
class Refused:
    http_status: int
    code: int
    reason: str


@dataclass(frozen=True)
class Unavailable:
    http_status: int


@dataclass(frozen=True)
class Accepted:
    timeline: list[ScriptedStatus]


Decision = Refused | Unavailable | Accepted


def decide(script: Script, attempt: int) -> Decision:
    """What the ``attempt``-th (1-based) send of one client_ref gets."""
    if attempt <= script.fail_attempts:
        return Unavailable(script.fail_http_status)
    if script.refuse is not None:
        return Refused(script.refuse.http_status, script.refuse.code, script.refuse.reason)
    return Accepted(list(script.statuses))
