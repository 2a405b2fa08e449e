"""Throughput and latency of ``POST /v0.1/dispatch`` on this machine.

Starts one real ``dispatch-gateway`` process against the broker at
``KAFKA_BOOTSTRAP`` (fresh topic prefix, one application made with the real
CLI), and a bare Starlette+uvicorn endpoint that parses the same JSON and
answers 202 with no validation and no Kafka. Each gets the same load: N
concurrent keep-alive connections posting valid dispatches with Basic auth for
a fixed time. Prints accepted/s, p50 and p99 for both.

    KAFKA_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/bench_gateway.py \
        --seconds 10 --connections 64

The load generator is a minimal HTTP/1.1 client on asyncio streams (request
bytes built once, responses parsed by status line and Content-Length): an
httpx client costs more CPU per request than the gateway itself, and on a
2-core machine that would measure the client, not the server.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BODY = orjson.dumps(
    {
        "template": "failover",
        "workflow": [
            {
                "from": {"type": "whatsapp", "number": "447700900001"},
                "to": {"type": "whatsapp", "number": "447700900000"},
                "message": {"content": {"type": "text", "text": "Your code is 1234"}},
                "failover": {"expiry_time": 600, "condition_status": "read"},
            },
            {
                "from": {"type": "sms", "number": "447700900001"},
                "to": {"type": "sms", "number": "447700900000"},
                "message": {"content": {"type": "text", "text": "Your code is 1234"}},
            },
        ],
    }
)


# -- the bare endpoint ---------------------------------------------------------------
def serve_bare(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def dispatch(request: Request) -> Response:
        orjson.loads(await request.body())
        return Response(
            orjson.dumps({"dispatch_uuid": str(uuid.uuid4())}),
            status_code=202,
            media_type="application/json",
        )

    app = Starlette(routes=[Route("/v0.1/dispatch", dispatch, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


# -- the load --------------------------------------------------------------------------
@dataclass
class Result:
    accepted: int
    other: int
    seconds: float
    latencies: list[float]

    def line(self, name: str) -> str:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0

        return (
            f"{name:8} accepted/s {self.accepted / self.seconds:8.0f}   "
            f"p50 {pct(0.50):6.1f} ms   p99 {pct(0.99):6.1f} ms   "
            f"(accepted {self.accepted}, other {self.other})"
        )


async def _connection(
    port: int, request: bytes, stop_at: float, latencies: list[float], counts: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                header = await reader.readline()
                if header in (b"\r\n", b""):
                    break
                name, _, value = header.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            counts[0 if status_line.split()[1] == b"202" else 1] += 1
    finally:
        writer.close()


async def load(port: int, auth: str, seconds: float, connections: int) -> Result:
    request = (
        b"POST /v0.1/dispatch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        + f"Authorization: {auth}\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()
        + BODY
    )
    latencies: list[float] = []
    counts = [0, 0]
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(
        *(_connection(port, request, stop_at, latencies, counts) for _ in range(connections))
    )
    return Result(counts[0], counts[1], time.perf_counter() - started, latencies)


# -- orchestration ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready within {timeout}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--other-checkout",
        type=Path,
        help="also load the gateway of this checkout (its code, run on this environment's "
        "packages), in turn with this one: an A/B",
    )
    parser.add_argument(
        "--other-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the other gateway only (e.g. GATEWAY_PRODUCER_LINGER_MS=1)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="each server loaded N times in turn")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return

    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        "DISPATCH_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:8]}.",
        "GATEWAY_RATE_LIMIT_PER_S": "0",
        # Seals the application's signature secret (a throwaway key per run).
        "DISPATCH_SECRETS_KEYS": os.environ.get(
            "DISPATCH_SECRETS_KEYS", "bench=" + base64.urlsafe_b64encode(os.urandom(32)).decode()
        ),
    }
    created = subprocess.run(
        [str(BIN / "dispatch"), "apps", "create", "--json", "--name", "bench",
         "--status-url", "http://127.0.0.1:9/s", "--final-report-url", "http://127.0.0.1:9/f"],
        env=env, capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    app = orjson.loads(created.stdout)
    auth = "Basic " + base64.b64encode(f"{app['api_key']}:{app['api_secret']}".encode()).decode()

    log_path = Path(tempfile.gettempdir()) / f"bench-gateway-{uuid.uuid4().hex[:6]}.log"
    servers: list[tuple[str, subprocess.Popen[bytes], int]] = []
    with log_path.open("wb") as log:

        def start_gateway(name: str, code: Path | None, own: dict[str, str]) -> None:
            port = free_port()
            # Another checkout's code on this environment's packages: ``-m``
            # puts the working directory first on the path.
            process = subprocess.Popen(
                [sys.executable, "-m", "services.gateway.main"],
                cwd=str(code or ROOT),
                # The bench posts no status callbacks; a secret only lets it start.
                env={
                    **env,
                    "GATEWAY_PORT": str(port),
                    "INBOUND_SIGNATURE_SECRET": "b" * 32,
                    **own,
                },
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            servers.append((name, process, port))

        try:
            start_gateway("gateway", None, {})
            if args.other_checkout or args.other_env:
                code = args.other_checkout.resolve() if args.other_checkout else None
                start_gateway("other", code, dict(e.split("=", 1) for e in args.other_env))
            bare_port = free_port()
            bare = subprocess.Popen(
                [sys.executable, __file__, "--serve-bare", str(bare_port)],
                start_new_session=True,
            )  # fmt: skip
            servers.append(("bare", bare, bare_port))
            run(args, auth, servers)
            print(f"gateway log: {log_path}")
        finally:
            for _, process, _ in servers:
                stop(process)


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process and its children so far (Linux /proc)."""
    total = 0.0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run(
    args: argparse.Namespace, auth: str, servers: list[tuple[str, subprocess.Popen[bytes], int]]
) -> None:
    for name, _, port in servers:
        if name != "bare":
            wait_http(f"http://127.0.0.1:{port}/readyz")
    bare_port = servers[-1][2]
    for _ in range(100):  # the bare endpoint has no GET route: wait for its port
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", bare_port)) == 0:
                break
        time.sleep(0.1)
    print(f"{args.connections} connections, {args.seconds:g} s each, body {len(BODY)} bytes")
    if args.other_checkout or args.other_env:
        print(f"other: the gateway of {args.other_checkout or 'this checkout'}, {args.other_env}")
    accepted: dict[str, list[int]] = {name: [] for name, _, _ in servers}
    for _ in range(args.rounds):
        for name, process, port in servers:
            asyncio.run(load(port, auth, args.warmup, args.connections))
            cpu_before = cpu_seconds(process.pid)
            result = asyncio.run(load(port, auth, args.seconds, args.connections))
            cpu = cpu_seconds(process.pid) - cpu_before
            per_request = cpu / max(result.accepted, 1) * 1e6
            accepted[name].append(result.accepted)
            print(
                result.line(name)
                + f"   server CPU {cpu / result.seconds:.0%} of a core,"
                + f" {per_request:.0f} us/req",
                flush=True,
            )
    for name in accepted:
        if name != "bare":
            ratio = sum(accepted[name]) / max(sum(accepted["bare"]), 1)
            print(f"{name} / bare: {ratio:.0%}")


if __name__ == "__main__":
    main()
