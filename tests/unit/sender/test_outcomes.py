"""How provider answers become outcomes, and how long transient ones are retried."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from events.commands import SendMessage
from services.sender.ledger import Retrying
from services.sender.outcomes import (
    Answer,
    Refused,
    Submitted,
    Transient,
    Unknown,
    backoff_delays,
    classify,
    failed_event,
    submitted_event,
)
from services.sender.provider import submit_with_retries


def test_2xx_with_a_message_uuid_is_submitted() -> None:
    assert classify(202, {"message_uuid": "m-1"}) == Submitted("m-1")


def test_4xx_is_a_refusal_carrying_the_providers_code_and_reason() -> None:
    body = {
        "type": "https://developer.nexmo.com/api-errors/messages-olympus#1020",
        "title": "Invalid params",
        "detail": "The value of `to` is invalid",
    }
    answer = classify(422, body)
    assert answer == Refused(422, 1020, "Invalid params: The value of `to` is invalid")


def test_4xx_without_a_body_is_still_a_refusal() -> None:
    answer = classify(401, None)
    assert isinstance(answer, Refused)
    assert answer.http_status == 401
    assert "401" in answer.reason


def test_5xx_and_429_are_worth_another_try() -> None:
    assert isinstance(classify(503, {}), Transient)
    assert isinstance(classify(500, None), Transient)
    assert isinstance(classify(429, {}), Transient)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert backoff_delays(0.5, 4) == [0.5, 1, 2, 4]


def _command(step: int = 0) -> SendMessage:
    return SendMessage(
        event_id=uuid.uuid4(),
        dispatch_uuid=uuid.UUID(int=1),
        application_id="app",
        step=step,
        message={"to": {"type": "sms", "number": "447700900000"}},
    )


def test_outcome_events_have_deterministic_ids() -> None:
    command = _command()
    assert submitted_event(command, "m").event_id == submitted_event(command, "m").event_id
    assert failed_event(command, "x").event_id == failed_event(command, "y").event_id
    assert submitted_event(command, "m").event_id != failed_event(command, "x").event_id


class ScriptedProvider:
    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def submit(self, message: dict[str, Any], client_ref: str) -> Answer:
        self.calls.append(client_ref)
        return self.answers.pop(0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


async def test_transient_failures_are_retried_until_an_answer() -> None:
    clock = FakeClock()
    provider = ScriptedProvider([Transient("503"), Transient("503"), Submitted("m-9")])
    answer = await submit_with_retries(
        provider, {}, "ref", budget_s=60, initial_s=1, max_s=8, sleep=clock.sleep, clock=clock
    )
    assert answer == Submitted("m-9")
    assert provider.calls == ["ref", "ref", "ref"]
    assert clock.now == 3  # waited 1 s, then 2 s


async def test_a_provider_that_stays_down_fails_once_the_budget_is_spent() -> None:
    clock = FakeClock()
    provider = ScriptedProvider([Transient("down", 503)] * 100)
    answer = await submit_with_retries(
        provider, {}, "ref", budget_s=30, initial_s=1, max_s=8, sleep=clock.sleep, clock=clock
    )
    assert isinstance(answer, Refused)
    assert answer.http_status == 503
    assert "gave up" in answer.reason
    assert clock.now == 30  # never sleeps past the budget
    assert len(provider.calls) == 7  # after 0, 1, 3, 7, 15, 23 and 30 s


async def test_a_refusal_is_never_retried() -> None:
    clock = FakeClock()
    provider = ScriptedProvider([Refused(422, 1020, "no")])
    answer = await submit_with_retries(
        provider, {}, "ref", budget_s=60, initial_s=1, max_s=8, sleep=clock.sleep, clock=clock
    )
    assert answer == Refused(422, 1020, "no")
    assert len(provider.calls) == 1


async def test_an_unknown_outcome_is_never_retried() -> None:
    # The request went out and no answer came: the provider may have accepted
    # it, so another try could send the message twice.
    clock = FakeClock()
    provider = ScriptedProvider([Unknown("read timed out"), Submitted("m-2")])
    answer = await submit_with_retries(
        provider, {}, "ref", budget_s=60, initial_s=1, max_s=8, sleep=clock.sleep, clock=clock
    )
    assert answer == Unknown("read timed out")
    assert provider.calls == ["ref"]


async def test_every_call_is_announced_and_every_sure_refusal_reported() -> None:
    clock = FakeClock()
    provider = ScriptedProvider([Transient("503", 503), Submitted("m-3")])
    seen: list[tuple[str, int]] = []

    async def before(attempt: int) -> bool:
        seen.append(("before", attempt))
        return True

    async def after(attempts: int, answer: Transient) -> None:
        seen.append(("refused", attempts))

    answer = await submit_with_retries(
        provider, {}, "ref", budget_s=60, initial_s=1, max_s=8,
        before_attempt=before, after_refusal=after, sleep=clock.sleep, clock=clock,
    )  # fmt: skip
    assert answer == Submitted("m-3")
    assert seen == [("before", 1), ("refused", 1), ("before", 2)]


async def test_a_call_the_sender_may_no_longer_make_is_not_made() -> None:
    clock = FakeClock()
    provider = ScriptedProvider([Transient("503", 503), Submitted("m-4")])

    async def before(attempt: int) -> bool:
        return attempt == 1  # the partition left during the backoff

    answer = await submit_with_retries(
        provider, {}, "ref", budget_s=60, initial_s=1, max_s=8,
        before_attempt=before, sleep=clock.sleep, clock=clock,
    )  # fmt: skip
    assert answer is None
    assert provider.calls == ["ref"]


async def test_resumed_tries_keep_the_first_senders_count_and_budget() -> None:
    clock = FakeClock()
    first = datetime(2026, 1, 1, 12, tzinfo=UTC)
    resumed = Retrying(first, 2, "provider answered HTTP 503", 503)
    provider = ScriptedProvider([Transient("down", 503)] * 100)
    answer = await submit_with_retries(
        provider, {}, "ref", budget_s=30, initial_s=1, max_s=8, resumed=resumed,
        sleep=clock.sleep, clock=clock, now=lambda: first + timedelta(seconds=25),
    )  # fmt: skip
    assert isinstance(answer, Refused)
    # 25 s of the 30 were spent before the takeover: 5 s of tries are left
    # (back off 2 s, try, back off min(4, 3) s, try), counted on from two.
    assert clock.now == 5
    assert len(provider.calls) == 2
    assert "gave up after 4 attempts" in answer.reason


async def test_a_budget_spent_before_the_takeover_ends_without_a_call() -> None:
    clock = FakeClock()
    first = datetime(2026, 1, 1, 12, tzinfo=UTC)
    resumed = Retrying(first, 3, "provider answered HTTP 503", 503)
    provider = ScriptedProvider([Submitted("m-5")])
    answer = await submit_with_retries(
        provider, {}, "ref", budget_s=30, initial_s=1, max_s=8, resumed=resumed,
        sleep=clock.sleep, clock=clock, now=lambda: first + timedelta(minutes=5),
    )  # fmt: skip
    assert answer == Refused(
        503, None, "gave up after 3 attempts in 30 s: provider answered HTTP 503"
    )
    assert provider.calls == []
