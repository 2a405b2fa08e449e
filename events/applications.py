"""Records of the compacted ``dispatch.applications`` topic, keyed by application_id."""

from __future__ import annotations

from typing import Literal

from events.base import Message


class ApplicationRegistered(Message):
    """An application and its credentials. The latest record per key wins.

    ``api_secret_hash`` is ``salt$hexdigest``; the secret itself is shown once
    at creation and never stored. A tombstone (no value) for the key revokes
    the application.
    """

    type: Literal["ApplicationRegistered"] = "ApplicationRegistered"
    application_id: str
    name: str
    api_key: str
    api_secret_hash: str
    status_url: str
    final_report_url: str
    public_key_pem: str | None = None
    # JWT verification keys by ``kid``: several during a rotation's overlap.
    public_keys: dict[str, str] = {}
    signature_secret: str
