"""One example per rule of the failover template (DESIGN section 4), on a fake clock."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from events.dispatch import StepStarted, StepTimedOut, TimerScheduled, UsageAmended, WorkflowFailed
from services.failover.decide import Policy
from tests.unit.processor.harness import T0, Harness


def test_a_dispatch_starts_by_sending_step_zero_without_its_failover() -> None:
    h = Harness()
    d = h.request(steps=3)
    [send] = h.sends(d)
    assert send.step == 0
    assert send.application_id == "app-1"
    assert "failover" not in send.message
    assert send.message["to"] == {"type": "sms", "number": "447700900000"}
    assert h.types(d) == ["StepStarted", "SendMessage"]
    # The guard that ends the step should the sender never answer.
    [started] = [o for o in h.outputs if isinstance(o, StepStarted)]
    assert started.deadline_at == started.occurred_at + timedelta(hours=24)


def test_a_step_the_sender_never_answers_fails_over_after_the_limit() -> None:
    h = Harness(Policy(final_step_limit=timedelta(hours=1)))
    d = h.request(steps=2, expiry=15)
    h.tick(3599)
    assert h.started_steps(d) == [0]
    h.tick(1)  # the guard that StepStarted carried
    assert h.started_steps(d) == [0, 1]
    h.tick(3600)  # nor does the last step's sender answer
    [report] = h.final_reports(d)
    assert report["status"] == "error"


def test_condition_delivered_is_met_by_delivered_and_nothing_more_is_sent() -> None:
    h = Harness()
    d = h.request(steps=2)
    m = h.submitted(d, 0)
    h.status(d, m, "delivered", price="0.0333")
    assert h.started_steps(d) == [0]
    [report] = h.final_reports(d)
    assert report["status"] == "completed"
    h.tick(3600)  # the deadline passing later changes nothing
    assert h.started_steps(d) == [0]


def test_condition_delivered_is_met_by_read() -> None:
    h = Harness()
    d = h.request(steps=2)
    m = h.submitted(d, 0)
    h.status(d, m, "read")
    assert [r["status"] for r in h.final_reports(d)] == ["completed"]


def test_condition_read_is_not_met_by_delivered_only_by_read() -> None:
    h = Harness()
    d = h.request(steps=2, condition="read")
    m = h.submitted(d, 0)
    h.status(d, m, "delivered")
    assert h.final_reports(d) == []
    h.status(d, m, "read")
    assert [r["status"] for r in h.final_reports(d)] == ["completed"]
    assert h.started_steps(d) == [0]


def test_rejected_fails_over_at_once() -> None:
    h = Harness()
    d = h.request(steps=2)
    m = h.submitted(d, 0)
    h.status(d, m, "rejected")
    assert h.started_steps(d) == [0, 1]
    assert h.final_reports(d) == []


def test_undeliverable_fails_over_at_once() -> None:
    h = Harness()
    d = h.request(steps=3)
    m = h.submitted(d, 0)
    h.status(d, m, "undeliverable")
    assert h.started_steps(d) == [0, 1]


def test_send_failure_fails_over_and_is_reported_as_a_rejected_status() -> None:
    h = Harness()
    d = h.request(steps=2)
    h.send_failed(d, 0, code=1300)
    assert h.started_steps(d) == [0, 1]
    [hook] = h.webhooks(d, "status")
    assert hook.payload["status"] == "rejected"
    assert hook.payload["error"] == {"code": 1300, "reason": "Not part of the provider network"}
    assert hook.payload["dispatch_uuid"] == str(d)
    assert hook.payload["_links"]["workflow"]["href"] == f"/workflows/{d}"


def test_deadline_fails_over_never_early() -> None:
    h = Harness()
    d = h.request(steps=2, expiry=15)
    h.submitted(d, 0)
    # The fold arms a non-last step's expiry from its submission: no decision event.
    assert not [o for o in h.outputs if isinstance(o, TimerScheduled)]
    assert h.state(d).steps[0].deadline_at == T0 + timedelta(seconds=15)
    h.tick(14.999)  # same epoch second bucket as the deadline: still not due
    h.tick(0.0005)
    assert h.started_steps(d) == [0]
    h.tick(0.0005)  # exactly at the deadline
    assert h.started_steps(d) == [0, 1]
    [timed_out] = [o for o in h.outputs if isinstance(o, StepTimedOut)]
    assert timed_out.step == 0
    assert timed_out.deadline_at == T0 + timedelta(seconds=15)


def test_a_timeout_after_the_condition_was_met_is_ignored() -> None:
    h = Harness()
    d = h.request(steps=2, expiry=15)
    m = h.submitted(d, 0)
    h.status(d, m, "delivered")
    h.tick(20)
    assert h.started_steps(d) == [0]
    assert not any(isinstance(o, StepTimedOut) for o in h.outputs)
    assert len(h.final_reports(d)) == 1


def test_last_step_outcomes() -> None:
    h = Harness()
    delivered, rejected, failed = h.request(steps=1), h.request(steps=1), h.request(steps=1)
    h.status(delivered, h.submitted(delivered, 0), "delivered")
    h.status(rejected, h.submitted(rejected, 0), "rejected")
    h.send_failed(failed, 0)
    assert [r["status"] for r in h.final_reports(delivered)] == ["completed"]
    assert [r["status"] for r in h.final_reports(rejected)] == ["error"]
    assert [r["status"] for r in h.final_reports(failed)] == ["error"]
    for d in (delivered, rejected, failed):
        assert h.started_steps(d) == [0]


def test_a_last_step_without_terminal_status_ends_in_error_after_the_limit() -> None:
    h = Harness(Policy(final_step_limit=timedelta(hours=24)))
    d = h.request(steps=2, expiry=15)
    h.submitted(d, 0)
    h.tick(15)
    m = h.submitted(d, 1)
    h.status(d, m, "submitted")
    h.tick(24 * 3600 - 1)
    assert h.final_reports(d) == []
    h.tick(1)
    [report] = h.final_reports(d)
    assert report["status"] == "error"
    [failed] = [o for o in h.outputs if isinstance(o, WorkflowFailed)]
    assert failed.reason == "expired"


def test_every_status_is_webhooked_in_the_seed_shape_late_ones_included() -> None:
    h = Harness()
    d = h.request(steps=2, expiry=15)
    m0 = h.submitted(d, 0)
    h.status(d, m0, "submitted")
    h.tick(15)
    m1 = h.submitted(d, 1)
    h.status(d, m1, "delivered", price="0.02")
    h.status(d, m0, "delivered", price="0.0333")  # step 0 arrives after the end
    hooks = h.webhooks(d, "status")
    assert [(x.payload["message_uuid"], x.payload["status"]) for x in hooks] == [
        (m0, "submitted"),
        (m1, "delivered"),
        (m0, "delivered"),
    ]
    late = hooks[-1].payload
    assert late == {
        "message_uuid": m0,
        "to": {"type": "sms", "number": "447700900000"},
        "from": {"type": "sms", "number": "447700900001"},
        "timestamp": (T0 + timedelta(seconds=15)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "status": "delivered",
        "usage": {"currency": "EUR", "price": "0.0333"},
        "dispatch_uuid": str(d),
        "_links": {"workflow": {"dispatch_uuid": str(d), "href": f"/workflows/{d}"}},
    }
    assert all(x.application_id == "app-1" for x in hooks)


def test_exactly_one_final_report_in_the_seed_shape_with_usage_summed_exactly() -> None:
    h = Harness()
    d = h.request(steps=2, expiry=15)
    m0 = h.submitted(d, 0)
    h.status(d, m0, "rejected", price="0.0333")
    m1 = h.submitted(d, 1)
    h.status(d, m1, "delivered", price="0.02")
    h.status(d, m1, "read", price="0.02")
    [report] = h.final_reports(d)
    assert report == {
        "dispatch_uuid": str(d),
        "template": "failover",
        "status": "completed",
        "timestamp": "2026-01-01T12:00:00.000Z",
        "usage": {"price": "0.0533", "currency": "EUR"},
        "_links": {
            "messages": [
                {
                    "message_uuid": m0,
                    "href": m0,
                    "channel": "sms",
                    "usage": {"currency": "EUR", "price": "0.0333"},
                    "status": "rejected",
                },
                {
                    "message_uuid": m1,
                    "href": m1,
                    "channel": "whatsapp",
                    "usage": {"currency": "EUR", "price": "0.02"},
                    "status": "delivered",
                },
            ]
        },
    }
    assert len(h.webhooks(d, "final")) == 1


def test_a_price_after_the_final_report_is_amended() -> None:
    h = Harness()
    d = h.request(steps=2, expiry=15)
    m0 = h.submitted(d, 0)
    h.tick(15)
    m1 = h.submitted(d, 1)
    h.status(d, m1, "delivered", price="0.02")
    h.status(d, m0, "delivered", price="0.0333")
    [report] = h.final_reports(d)
    assert report["usage"]["price"] == "0.02"
    [amended] = [o for o in h.outputs if isinstance(o, UsageAmended)]
    assert amended.message_uuid == m0
    assert Decimal(amended.total.price) == Decimal("0.0533")
    h.status(d, m0, "read", price="0.0333")  # same price again: nothing more to amend
    assert len([o for o in h.outputs if isinstance(o, UsageAmended)]) == 1
