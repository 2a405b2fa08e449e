"""What to do after an attempt: deliver, retry later, or give up. Pure functions.

Retryable: no answer (network error, timeout), 408, 429 and 5xx. Any other
non-2xx means the receiver looked at the request and refused it; sending the
same bytes again would only be refused again, so it is abandoned at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

from services.webhooks.config import RetryPolicy

RETRYABLE_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class AttemptResult:
    """What one POST produced: an HTTP status, or an error before any status."""

    http_status: int | None
    error: str | None = None
    retry_after_s: float | None = None
    body_excerpt: str = ""


@dataclass(frozen=True)
class Verdict:
    kind: Literal["delivered", "retry", "abandon"]
    reason: str
    next_attempt_at: float | None = None


def is_retryable(result: AttemptResult) -> bool:
    status = result.http_status
    return status is None or status in RETRYABLE_STATUSES or status >= 500


def backoff_s(policy: RetryPolicy, attempts: int) -> float:
    """Delay after the ``attempts``-th failed attempt: initial, doubling, capped."""
    exponent = max(attempts - 1, 0)
    # Cap the exponent too: 2**large is fine for ints but pointless past the cap.
    return min(policy.initial_s * (2 ** min(exponent, 62)), policy.max_s)


def describe(result: AttemptResult) -> str:
    if result.http_status is None:
        return result.error or "no response"
    text = f"HTTP {result.http_status}"
    return f"{text}: {result.body_excerpt}" if result.body_excerpt else text


def decide(
    policy: RetryPolicy,
    result: AttemptResult,
    *,
    attempts: int,
    first_attempt_at: float,
    now: float,
) -> Verdict:
    """``attempts`` counts the attempt that produced ``result``."""
    status = result.http_status
    if status is not None and 200 <= status < 300:
        return Verdict("delivered", f"HTTP {status}")
    reason = describe(result)
    if not is_retryable(result):
        return Verdict("abandon", f"not retryable: {reason}")
    delay = backoff_s(policy, attempts)
    # A receiver asking for more time gets it, within the cap: a Retry-After of
    # a week would otherwise outlive the give-up window silently.
    if result.retry_after_s is not None and result.retry_after_s > delay:
        delay = min(result.retry_after_s, policy.max_s)
    next_at = now + delay
    if next_at > first_attempt_at + policy.give_up_s:
        elapsed = now - first_attempt_at
        return Verdict(
            "abandon", f"gave up after {attempts} attempts over {elapsed:.0f} s; last: {reason}"
        )
    return Verdict("retry", reason, next_attempt_at=next_at)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - now, 0.0)
