"""The whole product on the real broker, as processes: simulator, projector,
gateway, processor, sender, webhook deliverer — plus an in-test webhook
receiver. Used by the end-to-end tests and the end-to-end benchmark."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.kafka import KafkaSettings
from services.webhooks.verify import verify_webhook
from tests.conftest import kafka_env
from tests.processes import BIN, Process, free_port

CALLBACK_SECRET = "stack-callback-signature-secret-32-bytes"


@dataclass
class Receiver:
    """Collects every webhook it gets; answers 204 (503, keeping nothing, while ``down``)."""

    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # application_id → signature secret
    down: bool = False
    refused: int = 0  # webhooks answered 503 while down

    def app(self) -> Starlette:
        async def receive(request: Request) -> Response:
            body = await request.body()
            if self.down:
                self.refused += 1
                return Response(status_code=503)
            payload = orjson.loads(body)
            self.received.append(
                {
                    "at": time.time(),
                    "kind": request.path_params["kind"],
                    "app": request.path_params["app"],
                    "payload": payload,
                    "body": body,
                    "authorization": request.headers.get("authorization", ""),
                    "webhook_id": request.headers.get("x-dispatch-webhook-id"),
                }
            )
            return Response(status_code=204)

        return Starlette(routes=[Route("/{app}/{kind}", receive, methods=["POST"])])

    def url(self, app: str, kind: str) -> str:
        return f"http://127.0.0.1:{self.port}/{app}/{kind}"

    def of(self, dispatch_uuid: str, kind: str) -> list[dict[str, Any]]:
        return [
            r["payload"]
            for r in self.received
            if r["kind"] == kind and r["payload"].get("dispatch_uuid") == dispatch_uuid
        ]

    def verify_all(self) -> None:
        for r in self.received:
            verify_webhook(r["body"], r["authorization"], self.secrets[r["app"]])


@dataclass
class App:
    name: str
    application_id: str
    api_key: str
    api_secret: str
    signature_secret: str

    @property
    def auth(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.api_key}:{self.api_secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


# The console entry point of each kind of process.
ENTRY_POINTS = {
    "simulator": "dispatch-simulator",
    "projector": "dispatch-projector",
    "gateway": "dispatch-gateway",
    "processor": "dispatch-processor",
    "sender": "dispatch-sender",
    "webhooks": "dispatch-webhooks",
}


@dataclass
class Stack:
    settings: KafkaSettings
    tmp: Path
    receiver: Receiver
    gateway_port: int = field(default_factory=free_port)
    simulator_port: int = field(default_factory=free_port)
    projector_port: int = field(default_factory=free_port)
    processor_metrics_port: int = field(default_factory=free_port)
    processes: list[Process] = field(default_factory=list)
    # Settings a test adds to (or overrides in) every process's environment.
    extra_env: dict[str, str] = field(default_factory=dict)
    # The projection store (PROJECTOR_STORE_URL); None: SQLite at projector_db.
    store_url: str | None = None
    # Instances of each kind of process start_all starts (1 when not named).
    # More than one projector needs a shared store (store_url).
    scale: dict[str, int] = field(default_factory=dict)
    # The running process of each instance, by name ("gateway", "gateway-2", ...).
    instances: dict[str, Process] = field(default_factory=dict)
    # Gateways a load balancer would leave out: one restarting is out until
    # its /readyz answers 200 (it serves HTTP while its registry loads).
    out_of_rotation: set[str] = field(default_factory=set)
    _own_env: dict[str, dict[str, str]] = field(default_factory=dict)
    _next_gateway: int = 0

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def gateways(self) -> list[str]:
        """The base URL of every gateway instance started."""
        ports = [self.gateway_port] + [
            int(env["GATEWAY_PORT"]) for name, env in self._own_env.items() if "GATEWAY_PORT" in env
        ]
        return [f"http://127.0.0.1:{port}" for port in ports]

    def next_gateway(self) -> str | None:
        """Gateways in rotation in turn, as a load balancer spreads requests;
        None while every gateway is out of rotation."""
        urls = [url for url in self.gateways if url not in self.out_of_rotation]
        if not urls:
            return None
        self._next_gateway += 1
        return urls[self._next_gateway % len(urls)]

    @property
    def simulator(self) -> str:
        return f"http://127.0.0.1:{self.simulator_port}"

    @property
    def projector_db(self) -> Path:
        return self.tmp / "projections.sqlite3"

    def env(self) -> dict[str, str]:
        return {
            **kafka_env(self.settings),
            "GATEWAY_PORT": str(self.gateway_port),
            "SIMULATOR_PORT": str(self.simulator_port),
            "SIMULATOR_CALLBACK_URL": f"{self.gateway}/v0.1/status",
            "SIMULATOR_SPEED": os.environ.get("E2E_SIMULATOR_SPEED", "4"),
            "SIMULATOR_SEED": "7",
            "PROVIDER_BASE_URL": self.simulator,
            "PROJECTOR_PORT": str(self.projector_port),
            "PROJECTOR_URL": f"http://127.0.0.1:{self.projector_port}",
            "PROJECTOR_DB": str(self.projector_db),
            "PROJECTOR_STORE_URL": self.store_url or "",
            "PROCESSOR_DATA_DIR": str(self.tmp / "processor"),
            "PROCESSOR_METRICS_PORT": str(self.processor_metrics_port),
            "WEBHOOK_ALLOW_PRIVATE": "1",
            "WEBHOOK_RETRY_INITIAL_S": "0.5",
            "GATEWAY_RATE_LIMIT_PER_S": "0",
            # Digit 6 answers after 60 s / speed: past this, the outcome is unknown.
            "PROVIDER_READ_TIMEOUT_S": "5",
            # The provider (simulator) signs status callbacks; the gateway verifies.
            "INBOUND_SIGNATURE_SECRET": CALLBACK_SECRET,
            "SIMULATOR_SIGNATURE_SECRET": CALLBACK_SECRET,
            **self.extra_env,
        }

    def start(self, name: str, *args: str) -> Process:
        process = Process(name, list(args), self.env(), self.tmp)
        self.processes.append(process)
        return process

    def start_all(self) -> None:
        for kind in ENTRY_POINTS:
            for index in range(self.scale.get(kind, 1)):
                self.start_instance(kind, index)
        for url in self.gateways:
            self.wait_ready(f"{url}/readyz")
        self.wait_ready(f"http://127.0.0.1:{self.projector_port}/readyz")

    def start_instance(self, kind: str, index: int = 0) -> Process:
        """Instance ``index`` of a kind of process (0 is the one ``start_all``
        always starts). Each instance has its own ports and data folder, kept
        across restarts; processors share their faust app's group, senders,
        deliverers and projectors their consumer groups."""
        name = kind if index == 0 else f"{kind}-{index + 1}"
        own = self._own_env.setdefault(name, self._instance_env(kind, index))
        process = Process(name, [ENTRY_POINTS[kind]], {**self.env(), **own}, self.tmp)
        self.processes.append(process)
        self.instances[name] = process
        port = own.get(_HTTP_PORT.get(kind, ""))
        if port is None and index == 0:
            port = self.env().get(_HTTP_PORT.get(kind, ""))
        if port is not None:
            process.wait_for_port(int(port))
        return process

    def _instance_env(self, kind: str, index: int) -> dict[str, str]:
        if index == 0:
            return {}
        if kind == "processor":
            return {
                "PROCESSOR_DATA_DIR": str(self.tmp / f"processor-{index + 1}"),
                "PROCESSOR_METRICS_PORT": str(free_port()),
            }
        if kind in _HTTP_PORT:
            return {_HTTP_PORT[kind]: str(free_port())}
        return {}

    def kill_and_restart(self, name: str) -> Process:
        """kill -9 one instance, then start it again on its ports and data."""
        kind, _, number = name.partition("-")
        index = int(number) - 1 if number else 0
        if kind != "gateway":
            self.instances[name].kill9()
            return self.start_instance(kind, index)
        url = self.gateways[index]
        self.out_of_rotation.add(url)
        self.instances[name].kill9()
        process = self.start_instance(kind, index)
        self.wait_ready(f"{url}/readyz")
        self.out_of_rotation.discard(url)
        return process

    def wait_ready(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"{url} not ready within {timeout}s\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-3000:]}" for p in self.processes)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "dispatch"), *args],
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def create_app(self, name: str) -> App:
        result = self.cli(
            "apps", "create", "--name", name, "--json",
            "--status-url", self.receiver.url(name, "status"),
            "--final-report-url", self.receiver.url(name, "final"),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        shown = orjson.loads(result.stdout)
        app = App(
            name=name,
            application_id=shown["application_id"],
            api_key=shown["api_key"],
            api_secret=shown["api_secret"],
            signature_secret=shown["signature_secret"],
        )
        self.receiver.secrets[name] = app.signature_secret
        return app


# The setting that names each HTTP server's port: readiness is an open port.
_HTTP_PORT = {
    "simulator": "SIMULATOR_PORT",
    "projector": "PROJECTOR_PORT",
    "gateway": "GATEWAY_PORT",
}


@contextlib.asynccontextmanager
async def serve_receiver(receiver: Receiver) -> AsyncIterator[Receiver]:
    server = uvicorn.Server(
        uvicorn.Config(receiver.app(), host="127.0.0.1", port=receiver.port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
        await asyncio.sleep(0.02)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task


async def post_until_accepted(
    client: httpx.AsyncClient, stack: Stack, app: App, body: dict[str, Any], timeout: float = 20
) -> str:
    """POST a dispatch; a just-created application may take a moment to be known."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.post(
            f"{stack.gateway}/v0.1/dispatch",
            content=orjson.dumps(body),
            headers={**app.auth, "Content-Type": "application/json"},
        )
        if response.status_code == 202:
            return str(response.json()["dispatch_uuid"])
        if response.status_code != 401 or time.monotonic() > deadline:
            raise AssertionError(f"POST refused: {response.status_code} {response.text}")
        await asyncio.sleep(0.25)


async def wait_for_finals(stack: Stack, uuids: list[str], timeout: float) -> None:
    """Until every dispatch in ``uuids`` has its final report at the receiver."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(stack.receiver.of(u, "final") for u in uuids):
            return
        await asyncio.sleep(0.2)
    missing = [u for u in uuids if not stack.receiver.of(u, "final")]
    raise AssertionError(f"no final report for {missing}\n{stack.logs()}")
