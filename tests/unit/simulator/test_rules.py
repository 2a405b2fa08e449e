"""The default script picks the outcome from the recipient's last digit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.simulator.rules import (
    Accepted,
    Refused,
    Unavailable,
    decide,
    load_rules,
    recipient_of,
)

RULES = load_rules(None)


def _timeline(number: str, attempt: int = 1) -> list[tuple[float, str]]:
    decision = decide(RULES.script_for(number), attempt)
    assert isinstance(decision, Accepted)
    return [(s.after_s, s.status) for s in decision.timeline]


def test_digit_0_is_delivered_then_read() -> None:
    assert _timeline("447700900000") == [(0, "submitted"), (1, "delivered"), (2, "read")]


@pytest.mark.parametrize("number", ["447700900001", "447700900006", "447700900009"])
def test_digit_1_and_unscripted_digits_are_delivered_never_read(number: str) -> None:
    assert _timeline(number) == [(0, "submitted"), (1, "delivered")]


def test_digit_2_is_refused_at_once_with_a_code_and_reason() -> None:
    decision = decide(RULES.script_for("447700900002"), 1)
    assert isinstance(decision, Refused)
    assert decision.http_status == 422
    assert decision.code == 1020
    assert decision.reason


def test_digit_3_is_undeliverable_with_error_1300() -> None:
    decision = decide(RULES.script_for("447700900003"), 1)
    assert isinstance(decision, Accepted)
    last = decision.timeline[-1]
    assert (last.after_s, last.status) == (1, "undeliverable")
    assert last.error is not None
    assert (last.error.code, last.error.reason) == (1300, "Not part of the provider network")


def test_digit_4_is_submitted_then_silence() -> None:
    assert _timeline("447700900004") == [(0, "submitted")]


def test_digit_5_fails_twice_with_503_then_behaves_as_0() -> None:
    script = RULES.script_for("447700900005")
    assert decide(script, 1) == Unavailable(503)
    assert decide(script, 2) == Unavailable(503)
    assert _timeline("447700900005", attempt=3) == _timeline("447700900000")


def test_messenger_recipients_use_their_id() -> None:
    message = {"to": {"type": "messenger", "id": "1234567892"}}
    assert recipient_of(message) == "1234567892"
    assert isinstance(decide(RULES.script_for(recipient_of(message)), 1), Refused)


def test_every_channel_has_a_eur_price() -> None:
    for channel in ("sms", "mms", "whatsapp", "viber_service_msg", "messenger"):
        assert RULES.price_for(channel) is not None


def test_a_rule_file_replaces_the_default_script(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(
        json.dumps(
            {
                "prices": {"sms": "0.5"},
                "scripts": {"7": {"latency_s": 3, "statuses": [{"after_s": 0, "status": "read"}]}},
            }
        )
    )
    rules = load_rules(str(path))
    assert rules.script_for("447700900007").latency_s == 3
    assert rules.price_for("sms") == "0.5"
    # No default script: unscripted digits are accepted with no statuses.
    assert decide(rules.script_for("447700900000"), 1) == Accepted([])


def test_a_rule_file_with_unknown_fields_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"scripts": {"1": {"statuses": [], "sometimes": True}}}))
    with pytest.raises(ValueError):
        load_rules(str(path))
