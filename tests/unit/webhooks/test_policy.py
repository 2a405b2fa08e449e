"""Which answers are retried, when, and when the deliverer gives up."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from services.webhooks.config import RetryPolicy, WebhookSettings
from services.webhooks.policy import AttemptResult, backoff_s, decide, parse_retry_after

POLICY = RetryPolicy(initial_s=5, max_s=900, give_up_s=86_400)


def test_backoff_starts_at_initial_doubles_and_caps() -> None:
    delays = [backoff_s(POLICY, n) for n in range(1, 12)]
    assert delays[:6] == [5, 10, 20, 40, 80, 160]
    assert delays[-1] == 900
    assert max(delays) == 900
    assert backoff_s(POLICY, 10_000) == 900  # no overflow far down the schedule


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_2xx_is_delivered(status: int) -> None:
    verdict = decide(POLICY, AttemptResult(status), attempts=1, first_attempt_at=0, now=0)
    assert verdict.kind == "delivered"


@pytest.mark.parametrize("status", [None, 408, 429, 500, 502, 503, 504])
def test_no_answer_timeouts_throttling_and_5xx_are_retried(status: int | None) -> None:
    result = AttemptResult(status, error="connection refused" if status is None else None)
    verdict = decide(POLICY, result, attempts=3, first_attempt_at=100, now=130)
    assert verdict.kind == "retry"
    assert verdict.next_attempt_at == 130 + 20


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 410, 413, 422])
def test_other_answers_are_abandoned_at_once_with_the_reason(status: int) -> None:
    result = AttemptResult(status, body_excerpt="no such hook")
    verdict = decide(POLICY, result, attempts=1, first_attempt_at=0, now=0)
    assert verdict.kind == "abandon"
    assert f"HTTP {status}" in verdict.reason and "no such hook" in verdict.reason


def test_gives_up_when_the_next_attempt_would_fall_past_the_window() -> None:
    first = 1_000.0
    inside = decide(
        POLICY, AttemptResult(503), attempts=50, first_attempt_at=first, now=first + 85_000
    )
    assert inside.kind == "retry" and inside.next_attempt_at == first + 85_900
    past = decide(
        POLICY, AttemptResult(503), attempts=51, first_attempt_at=first, now=first + 85_600
    )
    assert past.kind == "abandon"
    assert "gave up after 51 attempts" in past.reason and "HTTP 503" in past.reason


def test_retry_after_lengthens_the_wait_but_never_past_the_cap() -> None:
    polite = AttemptResult(429, retry_after_s=120)
    assert decide(POLICY, polite, attempts=1, first_attempt_at=0, now=0).next_attempt_at == 120
    greedy = AttemptResult(503, retry_after_s=7 * 86_400)
    assert decide(POLICY, greedy, attempts=1, first_attempt_at=0, now=0).next_attempt_at == 900
    # A shorter Retry-After does not make us hammer a failing receiver.
    eager = AttemptResult(503, retry_after_s=1)
    assert decide(POLICY, eager, attempts=3, first_attempt_at=0, now=0).next_attempt_at == 20


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert parse_retry_after("30", now) == 30
    later = format_datetime(datetime(2026, 1, 1, 12, 1, 0, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(later, now) == 60
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith(("WEBHOOK_", "DISPATCH_"))]:
        monkeypatch.delenv(name)
    defaults = WebhookSettings.from_env()
    for name, value in {
        "WEBHOOK_RETRY_INITIAL_S": "0.5",
        "WEBHOOK_RETRY_MAX_S": "4",
        "WEBHOOK_GIVE_UP_S": "60",
        "WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT": "3",
        "WEBHOOK_ALLOW_PRIVATE": "1",
        "DISPATCH_TOPIC_PREFIX": "x.",
    }.items():
        monkeypatch.setenv(name, value)
    settings = WebhookSettings.from_env()
    assert settings.retry == RetryPolicy(0.5, 4, 60)
    assert settings.max_in_flight_per_endpoint == 3
    assert settings.allow_private
    assert settings.consumer_group == "x.dispatch-webhooks"
    assert defaults.retry == RetryPolicy(5, 900, 86_400)
    assert not defaults.allow_private
