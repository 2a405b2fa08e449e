"""The deliverer's HTTP client against a real receiver: status and
Retry-After reported, bodies read only up to the cap, redirects not followed,
timeouts and refused connections turned into retryable results."""

from __future__ import annotations

from services.webhooks.config import WebhookSettings
from services.webhooks.policy import describe, is_retryable
from services.webhooks.transport import make_transport
from tests.integration.test_webhooks import Answer, Receiver
from tests.processes import free_port


def settings() -> WebhookSettings:
    # Receivers here listen on loopback.
    return WebhookSettings(
        connect_timeout_s=1,
        read_timeout_s=0.5,
        max_response_bytes=1024,
        allow_private=True,
    )


async def test_answers_are_reported_with_retry_after_and_a_fixed_reason() -> None:
    transport = make_transport(settings())
    try:
        async with Receiver() as receiver:
            receiver.scripts["/busy"] = lambda n: Answer(429, headers={"Retry-After": "7"})
            receiver.scripts["/huge"] = lambda n: Answer(400, body=b"x" * 5_000_000)
            receiver.scripts["/leaky"] = lambda n: Answer(
                500, body=b"<html>db password hunter2 at 10.0.0.5</html>"
            )
            sent = b'{"a":1}'
            ok = await transport.post(
                receiver.url("/ok"), sent, {"Content-Type": "application/json"}, now=0
            )
            assert ok.http_status == 200 and ok.body_excerpt == ""
            assert receiver.at("/ok")[0].body == sent

            busy = await transport.post(receiver.url("/busy"), sent, {}, now=0)
            assert (busy.http_status, busy.retry_after_s) == (429, 7)

            huge = await transport.post(receiver.url("/huge"), sent, {}, now=0)
            assert huge.http_status == 400
            assert describe(huge) == "HTTP 400: Bad Request"
            # What reaches tenant-visible history is the status and a fixed
            # reason, never the receiver's words.
            leaky = await transport.post(receiver.url("/leaky"), sent, {}, now=0)
            assert describe(leaky) == "HTTP 500: Internal Server Error"

            # A redirect could point anywhere, past the address check: it is
            # the answer, never followed.
            receiver.scripts["/moved"] = lambda n: Answer(
                307, headers={"Location": receiver.url("/elsewhere")}
            )
            moved = await transport.post(receiver.url("/moved"), sent, {}, now=0)
            assert moved.http_status == 307
            assert receiver.at("/elsewhere") == []
    finally:
        await transport.aclose()


async def test_slow_and_absent_receivers_are_retryable_failures() -> None:
    transport = make_transport(settings())
    try:
        async with Receiver() as receiver:
            receiver.scripts["/slow"] = lambda n: Answer(200, delay_s=3)
            slow = await transport.post(receiver.url("/slow"), b"{}", {}, now=0)
            assert slow.http_status is None and "time" in (slow.error or "")
            assert is_retryable(slow)
        refused = await transport.post(f"http://127.0.0.1:{free_port()}/x", b"{}", {}, now=0)
        assert refused.http_status is None and is_retryable(refused)
    finally:
        await transport.aclose()
