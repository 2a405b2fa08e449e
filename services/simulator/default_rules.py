"""The simulator's default script, keyed by the last digit of the recipient.

Kept as a Python module (not a data file) so it ships with the package as is.
``SIMULATOR_RULES`` points at a JSON file of the same shape to replace it.
"""

from __future__ import annotations

from typing import Any

_SUBMITTED = {"after_s": 0, "status": "submitted"}
_DELIVERED = {"after_s": 1, "status": "delivered"}
_READ = {"after_s": 2, "status": "read"}

DEFAULT_RULES: dict[str, Any] = {
    # EUR per delivered message, by channel.
    "prices": {
        "sms": "0.0333",
        "mms": "0.0700",
        "whatsapp": "0.0140",
        "viber_service_msg": "0.0250",
        "messenger": "0.0000",
    },
    "scripts": {
        "0": {"statuses": [_SUBMITTED, _DELIVERED, _READ]},
        "1": {"statuses": [_SUBMITTED, _DELIVERED]},
        "2": {
            "refuse": {
                "http_status": 422,
                "code": 1020,
                "reason": "The recipient refuses messages from this sender",
            }
        },
        "3": {
            "statuses": [
                _SUBMITTED,
                {
                    "after_s": 1,
                    "status": "undeliverable",
                    "error": {"code": 1300, "reason": "Not part of the provider network"},
                },
            ]
        },
        "4": {"statuses": [_SUBMITTED]},
        "5": {
            "fail_attempts": 2,
            "fail_http_status": 503,
            "statuses": [_SUBMITTED, _DELIVERED, _READ],
        },
        # Accepts the message but answers only after 60 s (15 s at the default
        # speed of 4 in tests): longer than the sender's read timeout, so the
        # sender cannot know it was accepted. Statuses name it by client_ref.
        "6": {"latency_s": 60, "statuses": [_SUBMITTED, _DELIVERED]},
    },
    # Every other last digit.
    "default": {"statuses": [_SUBMITTED, _DELIVERED]},
}
