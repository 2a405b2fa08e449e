"""The operator console in a real browser (Debian's Chromium, driven by
Playwright) against the whole stack on the real broker: sign in, find a
failed-over dispatch through the filters, check its timeline against the API's
GET, redeliver its abandoned final report and see the new attempt.

Screenshots of the three pages land in ``.local/console-screenshots/``."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from playwright.async_api import Browser, Page, async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.kafka import KafkaSettings
from tests.integration.stack import Receiver, Stack, post_until_accepted, serve_receiver
from tests.processes import free_port

pytestmark = pytest.mark.kafka

CHROMIUM = Path(os.environ.get("CONSOLE_TEST_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium keeps calling home, which a
# closed network answers slowly.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".local" / "console-screenshots"


@dataclass
class RefusingReceiver(Receiver):
    """Answers status webhooks with 204 and final reports with 410 (which the
    deliverer abandons at once) until ``accept_finals`` is set; then the next
    ``finals_down`` final reports get 503 (retried), as from a receiver that
    is down for a while, and the ones after that 204."""

    accept_finals: bool = False
    finals_down: int = 0
    finals_answered: list[int] = field(default_factory=list)

    def app(self) -> Starlette:
        inner = super().app()

        async def receive(request: Request) -> Response:
            if request.path_params["kind"] == "final" and not self.accept_finals:
                await request.body()
                self.finals_answered.append(410)
                return Response(status_code=410)
            if request.path_params["kind"] == "final" and self.finals_down > 0:
                await request.body()
                self.finals_down -= 1
                self.finals_answered.append(503)
                return Response(status_code=503)
            response: Response = await inner.router.routes[0].endpoint(request)  # type: ignore[attr-defined]
            if request.path_params["kind"] == "final":
                self.finals_answered.append(response.status_code)
            return response

        return Starlette(routes=[Route("/{app}/{kind}", receive, methods=["POST"])])


@dataclass
class ConsoleStack(Stack):
    console_port: int = field(default_factory=free_port)
    console_token: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def console(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "CONSOLE_PORT": str(self.console_port),
            "CONSOLE_TOKEN": self.console_token,
            "CONSOLE_PROCESSOR_METRICS_URL": (
                f"http://127.0.0.1:{self.processor_metrics_port}/metrics"
            ),
            "CONSOLE_SAMPLE_INTERVAL_S": "1",
        }


@pytest.fixture
async def stack(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[ConsoleStack]:
    receiver = RefusingReceiver()
    async with serve_receiver(receiver):
        stack = ConsoleStack(settings=kafka_settings, tmp=tmp_path, receiver=receiver)
        try:
            await asyncio.to_thread(stack.start_all)
            stack.start("console", "dispatch-console").wait_for_port(stack.console_port)
            yield stack
        finally:
            await asyncio.to_thread(stack.stop_all)


def _installed(path: Path) -> bool:
    return path.exists()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not _installed(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium package")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


def item(number: str, failover: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"type": "sms", "number": "447700900000"},
        "to": {"type": "sms", "number": number},
        "message": {"content": {"type": "text", "text": "hello"}},
    }
    if failover is not None:
        body["failover"] = failover
    return body


async def until(
    check: Callable[[], Awaitable[Any]], what: str, stack: Stack, timeout: float = 60
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what} not within {timeout}s\n{stack.logs()}")


async def rows_of(page: Page, selector: str) -> list[dict[str, str | None]]:
    return await page.eval_on_selector_all(
        selector,
        "rows => rows.map(r => Object.assign({}, r.dataset))",
    )


async def test_an_operator_finds_a_failover_reads_its_life_and_redelivers_its_report(
    stack: ConsoleStack, browser: Browser
) -> None:
    app = stack.create_app("shop")
    receiver = stack.receiver
    assert isinstance(receiver, RefusingReceiver)
    async with httpx.AsyncClient(timeout=10) as client:
        # Noise: one that completes on its first message, no failover.
        await post_until_accepted(
            client, stack, app, {"template": "failover", "workflow": [item("447700900001")]}
        )
        # Refused at once, then delivered on the second message.
        failed_over = await post_until_accepted(
            client,
            stack,
            app,
            {
                "template": "failover",
                "workflow": [
                    item("447700900002", {"expiry_time": 60, "condition_status": "delivered"}),
                    item("447700900001"),
                ],
            },
        )

        async def final_abandoned() -> dict[str, Any] | None:
            got = await client.get(f"{stack.gateway}/v0.1/dispatch/{failed_over}", headers=app.auth)
            view: dict[str, Any] = got.json()
            return view if got.status_code == 200 and view["final_report"]["abandoned"] else None

        api_view = await until(final_abandoned, "the final report abandoned", stack)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    # Not signed in: sent to the sign-in page; a wrong token is refused.
    await page.goto(f"{stack.console}/console/dispatches")
    assert "/console/login" in page.url
    await page.fill("input[name=token]", "not-the-token")
    await page.click("button[type=submit]")
    assert "not the console's" in await page.inner_text("main")
    await page.fill("input[name=token]", stack.console_token)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/console/dispatches")

    # The overview counts the failover and the abandoned final reports (the
    # receiver refuses both dispatches' reports).
    # The totals are read at most once a sampling interval (1 s here).
    # Every status webhook was delivered: the backlog is empty but for the two
    # abandoned final reports.
    async def overview_counts_both() -> bool:
        await page.goto(f"{stack.console}/console")
        return (
            await page.inner_text("[data-figure=abandoned]") == "2 dispatches"
            and await page.inner_text("[data-figure=webhooks_abandoned]") == "2 webhooks"
            and await page.inner_text("[data-figure=webhooks_pending]") == "0 pending"
        )

    await until(overview_counts_both, "the overview counting both abandoned reports", stack, 15)
    assert "send failed\n\n1 in all" in await page.inner_text("main")
    await page.screenshot(path=str(SCREENSHOTS / "overview.png"), full_page=True)

    # The filters narrow two dispatches down to the one that failed over.
    await page.goto(f"{stack.console}/console/dispatches")
    assert len(await page.query_selector_all("table.dispatches tbody a.uuid")) == 2
    await page.select_option("select[name=application]", app.application_id)
    await page.select_option("select[name=status]", "completed")
    await page.select_option("select[name=channel]", "sms")
    await page.check("input[name=failed_over]")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url("**failed_over=1**")
    links = await page.query_selector_all("table.dispatches tbody a.uuid")
    assert [await link.inner_text() for link in links] == [failed_over]
    await page.screenshot(path=str(SCREENSHOTS / "dispatches.png"), full_page=True)

    # Its page: the steps and the final report are what the API's GET says.
    await links[0].click()
    await page.wait_for_url(f"**/console/dispatches/{failed_over}")
    steps = await rows_of(page, "#steps tbody tr")
    assert [(s["state"], s["message"]) for s in steps] == [
        (s["state"], s["message_uuid"] or "") for s in api_view["steps"]
    ]
    shown_report = orjson.loads(await page.inner_text("#final-report"))
    assert shown_report["status"] == api_view["status"] == "completed"
    assert shown_report["usage"] == api_view["usage"]
    assert {k: shown_report[k] for k in api_view["final_report"]} == api_view["final_report"]
    types = [e["type"] for e in await rows_of(page, "#timeline li")]
    assert types[0] == "WorkflowRequested"
    for expected in ("MessageSendFailed", "MessageSubmitted", "WorkflowCompleted"):
        assert expected in types
    failover_line = await page.inner_text("#timeline li.kind-failover")
    assert "step 1: send over sms" in failover_line
    request_shown = orjson.loads(await page.inner_text("#request"))
    assert request_shown["workflow"][0]["to"]["number"] == "447700900002"
    rounds = await rows_of(page, "#webhooks tbody tr[data-webhook]")
    abandoned = [w["webhook"] for w in rounds if w["outcome"] == "abandoned"]
    assert len(abandoned) == 1  # the final report; every status webhook was delivered
    assert {w["outcome"] for w in rounds} == {"delivered", "abandoned"}
    await page.screenshot(path=str(SCREENSHOTS / "dispatch.png"), full_page=True)

    # Redelivery, once the receiver is fixed, though it is down for its first
    # three attempts: a second round, three failed attempts, then delivered.
    receiver.accept_finals = True
    receiver.finals_down = 3
    await page.click("#redeliver")
    await page.wait_for_url("**redelivered=1")

    async def second_round() -> bool:
        await page.reload()
        rounds = await rows_of(page, f"#webhooks tr[data-webhook='{abandoned[0]}']")
        return [r["outcome"] for r in rounds] == ["abandoned", "delivered"]

    await until(second_round, "the redelivered final report", stack)
    rounds = await rows_of(page, f"#webhooks tr[data-webhook='{abandoned[0]}']")
    assert [r["attempts"] for r in rounds] == ["1", "4"]
    attempts = await rows_of(page, f"#webhooks tr[data-attempt-of='{abandoned[0]}']")
    assert [(a["round"], a["attempt"], a["httpStatus"]) for a in attempts] == [
        ("2", "1", "503"),
        ("2", "2", "503"),
        ("2", "3", "503"),
    ]
    first_attempt = await page.inner_text(f"#webhooks tr[data-attempt-of='{abandoned[0]}']")
    assert "HTTP 503" in first_attempt
    # The timeline tells the same attempts, in log order.
    failed_lines = await page.query_selector_all("#timeline li[data-type=WebhookAttemptFailed]")
    assert len(failed_lines) == 3
    assert "final webhook attempt 1 (redelivery 1) failed: HTTP 503" in (
        await failed_lines[0].inner_text()
    )
    # Only this dispatch's report was sent again, and taken.
    assert sorted(receiver.finals_answered) == [204, 410, 410, 503, 503, 503]
    assert "redelivery" in (await page.inner_text(".notice"))
    await page.screenshot(path=str(SCREENSHOTS / "dispatch-redelivered.png"), full_page=True)
