"""Limits on the real gateway process, over raw sockets: a request head over
16 KiB gets 431 as soon as it is exceeded (an endless header is cut off, not
buffered), and a status callback body is capped while it streams (an endless
chunked body gets 413 without the gateway waiting for its end)."""

from __future__ import annotations

import select
import socket
from pathlib import Path

import orjson
import pytest

from services.kafka import KafkaSettings
from tests.integration.test_gateway_support import start_gateway
from tests.processes import Process

pytestmark = pytest.mark.kafka

CHUNK = 4096
# Sent at a steady pace (a chunk, then up to PACE_S for an answer), so that
# what was sent before the answer measures what the server read, not what
# the kernel's socket buffers absorbed.
PACE_S = 0.02
GIVE_UP_AFTER = 1024 * 1024
CUT_OFF_WITHIN = 256 * 1024


def _connect(base_url: str) -> socket.socket:
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _send_until_answered(sock: socket.socket, head: bytes, chunk: bytes) -> tuple[int, bytes]:
    """Send ``head``, then ``chunk`` over and over until the server answers
    (or closes); the bytes sent and what it answered."""
    sock.sendall(head)
    sent = len(head)
    while sent < GIVE_UP_AFTER:
        readable, _, _ = select.select([sock], [], [], PACE_S)
        if readable:
            break
        try:
            sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += len(chunk)
    sock.settimeout(10)
    answer = b""
    try:
        while part := sock.recv(65536):
            answer += part
    except (ConnectionResetError, TimeoutError):
        pass
    return sent, answer


def _status_and_body(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"application/problem+json" in head.lower(), head
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


@pytest.fixture
def gateway_url(kafka_settings: KafkaSettings, processes: list[Process], tmp_path: Path) -> str:
    gateway, base_url = start_gateway(kafka_settings, tmp_path)
    processes.append(gateway)
    return base_url


def test_a_header_over_the_limit_is_431(gateway_url: str) -> None:
    with _connect(gateway_url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n")
        _, answer = _send_until_answered(sock, b"", b"")
    status, problem = _status_and_body(answer)
    assert status == 431
    assert problem["status"] == 431


def test_an_endless_header_is_cut_off_not_buffered(gateway_url: str) -> None:
    with _connect(gateway_url) as sock:
        sent, answer = _send_until_answered(
            sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"a" * CHUNK
        )
    assert sent < CUT_OFF_WITHIN, "the gateway kept reading an endless header"
    status, _ = _status_and_body(answer)
    assert status == 431


def test_headers_within_the_limit_are_served(gateway_url: str) -> None:
    with _connect(gateway_url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 8_000 + b"\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


def test_an_endless_status_body_gets_413_while_it_streams(gateway_url: str) -> None:
    head = (
        b"POST /v0.1/status HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = f"{CHUNK:x}\r\n".encode() + b" " * CHUNK + b"\r\n"  # never the final 0-chunk
    for _ in range(100):  # 503 until the inbound endpoint has started
        with _connect(gateway_url) as sock:
            sent, answer = _send_until_answered(sock, head, chunk)
        status, _ = _status_and_body(answer)
        if status != 503:
            break
    assert status == 413
    assert sent < CUT_OFF_WITHIN, "the gateway read far past its 64 KiB cap"
