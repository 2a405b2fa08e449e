"""The processes of the Temporal peer, besides Temporal's own server:

- ``worker``: a Temporal worker running :mod:`bench.peer_temporal_workflow`
  and its two activities (the provider call, a signed webhook POST);
- ``signals``: the provider's status callback endpoint, which checks the
  callback's signature and signals the workflow named by its ``client_ref``.

    .venv/bin/python bench/peer_temporal_worker.py worker --target 127.0.0.1:23010 ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import orjson  # noqa: E402
from temporalio import activity  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.exceptions import ApplicationError  # noqa: E402
from temporalio.service import RPCError  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from bench.peer_temporal_workflow import TASK_QUEUE, FailoverWorkflow  # noqa: E402
from services.inbound.routes import CLOCK_SKEW_S, DEFAULT_MAX_AGE_S  # noqa: E402
from services.payload_signature import InvalidPayloadSignature, verify  # noqa: E402
from services.webhooks.signing import sign  # noqa: E402


class Activities:
    def __init__(self, session: aiohttp.ClientSession, provider_url: str, secret: str) -> None:
        self._session = session
        self._provider_url = provider_url
        self._secret = secret

    @activity.defn(name="send_message")
    async def send_message(self, step: dict[str, Any], client_ref: str) -> str:
        """The message to the provider; its message_uuid once accepted."""
        content = step["message"]["content"]
        message = {
            "channel": step["to"]["type"],
            "message_type": content["type"],
            "text": content.get("text"),
            "to": step["to"],
            "from": step["from"],
            "client_ref": client_ref,
        }
        async with self._session.post(
            self._provider_url,
            data=orjson.dumps(message),
            headers={"content-type": "application/json"},
        ) as response:
            answer = await response.read()
            if response.status >= 500:
                raise RuntimeError(f"provider answered {response.status}")  # retried
            if response.status >= 400:
                raise ApplicationError(answer.decode(errors="replace"), type="Refused")
            return str(orjson.loads(answer)["message_uuid"])

    @activity.defn(name="post_webhook")
    async def post_webhook(self, url: str, payload: dict[str, Any], application_id: str) -> None:
        """A webhook signed as Dispatch signs its own (HS256 JWT over the body)."""
        data = orjson.dumps(payload)
        headers = {
            "content-type": "application/json",
            "authorization": sign(
                data, secret=self._secret, application_id=application_id, now=time.time()
            ),
        }
        async with self._session.post(url, data=data, headers=headers) as response:
            await response.read()
            if response.status >= 300:
                raise RuntimeError(f"webhook answered {response.status}")  # retried


async def run_worker(args: argparse.Namespace) -> None:
    client = await Client.connect(args.target)
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        activities = Activities(session, args.provider_url, args.webhook_secret)
        worker = Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[FailoverWorkflow],
            activities=[activities.send_message, activities.post_webhook],
        )
        await worker.run()


def run_signals(args: argparse.Namespace) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    clients: list[Client] = []

    async def status(request: Request) -> Response:
        body = await request.body()
        try:
            # The gateway's own bounds for a provider's callback (services/inbound).
            verify(
                request.headers.get("authorization"),
                body,
                args.callback_secret,
                max_age_s=DEFAULT_MAX_AGE_S,
                future_skew_s=CLOCK_SKEW_S,
            )
        except InvalidPayloadSignature:
            return Response(status_code=401)
        callback = orjson.loads(body)
        dispatch_uuid, _, step = str(callback.get("client_ref", "")).rpartition(":")
        if not dispatch_uuid or not step.isdigit():
            return Response(status_code=422)
        signal = {
            "step": int(step),
            "status": callback["status"],
            "message_uuid": callback.get("message_uuid"),
            "timestamp": callback.get("timestamp"),
        }
        try:
            await clients[0].get_workflow_handle(dispatch_uuid).signal("status", signal)
        except RPCError:
            return Response(status_code=503)  # the provider retries
        return Response(status_code=204)

    @contextlib.asynccontextmanager
    async def connect(_app: Starlette) -> AsyncIterator[None]:
        clients.append(await Client.connect(args.target))
        yield

    app = Starlette(routes=[Route("/v0.1/status", status, methods=["POST"])], lifespan=connect)
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["worker", "signals"])
    parser.add_argument("--target", required=True, help="Temporal frontend host:port")
    parser.add_argument("--provider-url", default="")
    parser.add_argument("--webhook-secret", default="")
    parser.add_argument("--callback-secret", default="")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.role == "worker":
        asyncio.run(run_worker(args))
    else:
        run_signals(args)


if __name__ == "__main__":
    main()
