"""``dispatch demo``: what ``make run`` shows a new user.

It hosts a small webhook receiver that prints every (verified) webhook it gets,
registers a demo application whose webhooks point at it, sends three sample
dispatches, prints each one's timeline as it unfolds, then keeps receiving and
prints the credentials and a curl example so the user can send their own.

The samples rely on the simulator's default script (last digit of the
recipient decides the outcome): 1 delivered, 4 silence, 2 refused at once,
3 undeliverable.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from typing import Any

import click
import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from events.applications import ApplicationRegistered
from projections.audit import Narration
from services.applications.credentials import generate_credentials, hash_secret
from services.applications.register import publish_application
from services.kafka import KafkaSettings
from services.webhooks.verify import verify_webhook


def _item(
    channel: str, number: str, text: str, failover: dict[str, Any] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "from": {"type": channel, "number": "447700900000"},
        "to": {"type": channel, "number": number},
        "message": {"content": {"type": "text", "text": text}},
    }
    if failover is not None:
        item["failover"] = failover
    return item


SAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "completes on its first message",
        {
            "template": "failover",
            "workflow": [
                _item(
                    "sms",
                    "447700900001",
                    "Your code is 1234",
                    {"expiry_time": 60, "condition_status": "delivered"},
                ),
                _item("whatsapp", "447700900000", "Your code is 1234"),
            ],
        },
    ),
    (
        "fails over when WhatsApp is not read within 15 s",
        {
            "template": "failover",
            "workflow": [
                _item(
                    "whatsapp",
                    "447700900004",
                    "Your parcel arrives today",
                    {"expiry_time": 15, "condition_status": "read"},
                ),
                _item("sms", "447700900001", "Your parcel arrives today"),
            ],
        },
    ),
    (
        "fails over on an immediate rejection, then ends in error",
        {
            "template": "failover",
            "workflow": [
                _item(
                    "sms",
                    "447700900002",
                    "Appointment tomorrow at 10",
                    {"expiry_time": 60, "condition_status": "delivered"},
                ),
                _item("sms", "447700900003", "Appointment tomorrow at 10"),
            ],
        },
    ),
]


def _receiver(secret_holder: dict[str, str]) -> Starlette:
    async def receive(request: Request) -> Response:
        body = await request.body()
        verified = "unverified"
        secret = secret_holder.get("secret")
        if secret:
            try:
                verify_webhook(body, request.headers.get("authorization", ""), secret)
                verified = "signature ok"
            except Exception as exc:  # shown to the user, never raised
                verified = f"BAD SIGNATURE ({exc})"
        payload = orjson.loads(body)
        kind = request.path_params["kind"]
        short = str(payload.get("dispatch_uuid", ""))[:8]
        if kind == "status":
            click.echo(
                f"  [webhook status] {short} {payload.get('status')} "
                f"message {str(payload.get('message_uuid'))[:8]} ({verified})"
            )
        else:
            usage = payload.get("usage") or {}
            click.echo(
                f"  [webhook final ] {short} {payload.get('status')} "
                f"usage {usage.get('price')} {usage.get('currency')} ({verified})"
            )
        return Response(status_code=204)

    return Starlette(routes=[Route("/webhooks/{kind}", receive, methods=["POST"])])


async def _wait_ready(client: httpx.AsyncClient, url: str, what: str) -> None:
    for _ in range(600):
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(url)).status_code == 200:
                return
        await asyncio.sleep(0.5)
    raise click.ClickException(f"{what} at {url} did not become ready")


def is_guard(entry: dict[str, Any]) -> bool:
    """The final step limit (24 h by default) is a safety net, not part of the
    story a newcomer follows: the failover deadline is shown where it is armed."""
    return entry["type"] == "TimerScheduled" and entry["event"].get("reason") == "final_step_limit"


async def _follow(
    client: httpx.AsyncClient, projector: str, label: str, dispatch_uuid: str
) -> None:
    seen = 0
    narration = Narration()
    while True:
        response = await client.get(f"{projector}/internal/dispatches/{dispatch_uuid}/events")
        if response.status_code == 200:
            events = response.json()["events"]
            for entry in events[seen:]:
                what = narration.describe(entry["event"])  # every event folds
                if is_guard(entry):
                    continue
                click.echo(f"  [{label}] {entry['type']:22} {what}")
            seen = len(events)
            if any(
                e["type"] in ("WebhookDelivered", "WebhookAbandoned")
                and e["event"]["kind"] == "final"
                for e in events
            ):
                return
        await asyncio.sleep(0.3)


async def run_demo(gateway: str, projector: str, receiver_port: int) -> None:
    secret_holder: dict[str, str] = {}
    server = uvicorn.Server(
        uvicorn.Config(
            _receiver(secret_holder),
            host="127.0.0.1",
            port=receiver_port,
            log_level="warning",
            access_log=False,
        )
    )
    serving = asyncio.create_task(server.serve())
    async with httpx.AsyncClient(timeout=10) as client:
        await _wait_ready(client, f"{gateway}/readyz", "the gateway")
        await _wait_ready(client, f"{projector}/readyz", "the projector")
        receiver = f"http://127.0.0.1:{receiver_port}/webhooks"
        credentials = generate_credentials()
        await publish_application(
            KafkaSettings.from_env(),
            ApplicationRegistered(
                application_id=credentials.application_id,
                name="demo",
                api_key=credentials.api_key,
                api_secret_hash=hash_secret(credentials.api_secret),
                status_url=f"{receiver}/status",
                final_report_url=f"{receiver}/final",
                signature_secret=credentials.signature_secret,
            ),
        )
        secret_holder["secret"] = credentials.signature_secret
        basic = base64.b64encode(
            f"{credentials.api_key}:{credentials.api_secret}".encode()
        ).decode()
        headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/json"}
        click.echo(f"\n== demo application {credentials.application_id} registered")
        followers = []
        for label_index, (title, body) in enumerate(SAMPLES, start=1):
            label = f"dispatch {label_index}"
            for _ in range(60):  # the gateway picks the new application up within seconds
                response = await client.post(
                    f"{gateway}/v0.1/dispatch",
                    content=orjson.dumps(body),
                    headers=headers,
                )
                if response.status_code != 401:
                    break
                await asyncio.sleep(0.5)
            if response.status_code != 202:
                raise click.ClickException(
                    f"{label} refused: {response.status_code} {response.text}"
                )
            dispatch_uuid = response.json()["dispatch_uuid"]
            click.echo(f"== {label} ({title}): {dispatch_uuid}")
            followers.append(_follow(client, projector, label, dispatch_uuid))
        await asyncio.gather(*followers)
        click.echo(
            f"\n== all three dispatches ended. Send your own:\n"
            f"   api_key    {credentials.api_key}\n"
            f"   api_secret {credentials.api_secret}\n\n"
            f"   curl -s -u '{credentials.api_key}:{credentials.api_secret}' "
            f"-H 'Content-Type: application/json' {gateway}/v0.1/dispatch -d "
            '\'{"template":"failover","workflow":[{"from":{"type":"sms","number":'
            '"447700900000"},"to":{"type":"sms","number":"447700900001"},'
            '"message":{"content":{"type":"text","text":"hi"}}}]}\'\n\n'
            f"   then: curl -s -u '{credentials.api_key}:{credentials.api_secret}' "
            f"{gateway}/v0.1/dispatch/<dispatch_uuid>   or   dispatch audit <dispatch_uuid>\n"
            + _console_hint()
            + "   Webhooks keep printing here. Ctrl-C stops everything."
        )
    await serving


def _console_hint() -> str:
    url, token = os.environ.get("CONSOLE_URL"), os.environ.get("CONSOLE_TOKEN")
    if not url or not token:
        return ""
    return f"   operator console: {url}  (sign in with the token {token})\n"


@click.command()
@click.option(
    "--gateway", default=lambda: os.environ.get("DEMO_GATEWAY_URL", "http://127.0.0.1:8080")
)
@click.option(
    "--projector", default=lambda: os.environ.get("PROJECTOR_URL", "http://127.0.0.1:8070")
)
@click.option("--receiver-port", default=lambda: int(os.environ.get("DEMO_RECEIVER_PORT", "8099")))
def demo(gateway: str, projector: str, receiver_port: int) -> None:
    """Register a demo application, send three sample dispatches, print what happens."""
    asyncio.run(run_demo(gateway, projector, receiver_port))
