"""uvicorn's httptools protocol with a cap on the request head (request line
plus headers): 431 as soon as it is exceeded, counted on the bytes as they
arrive, so an endless header is refused after the cap instead of being
buffered (uvicorn's httptools protocol has no such limit)."""

from __future__ import annotations

import asyncio
import uuid

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from services.gateway.problems import PROBLEM_BASE

DEFAULT_MAX_HEADER_BYTES = 16 * 1024


class HeadTooLarge(Exception):
    pass


def _response_431(limit: int) -> bytes:
    body = orjson.dumps(
        {
            "type": PROBLEM_BASE + "request-header-fields-too-large",
            "title": "Request header fields too large",
            "status": 431,
            "detail": f"The request line and headers exceed {limit} bytes.",
            "instance": uuid.uuid4().hex,
        }
    )
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class BoundedHeadProtocol(HttpToolsProtocol):
    # GATEWAY_MAX_HEADER_BYTES, set when the app is built, in every worker
    # process (uvicorn's workers import this class by name).
    max_head_bytes = DEFAULT_MAX_HEADER_BYTES

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._in_head = True
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # Still inside the head after this chunk: what arrived so far is all
        # head (body bytes only follow a complete head).
        if self._in_head and not self._refused and self._head_bytes > self.max_head_bytes:
            self._refuse()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True

    def on_headers_complete(self) -> None:
        if self._head_size() > self.max_head_bytes:
            # Raised inside a parser callback, it comes back as a parser
            # error, which uvicorn answers through send_400_response.
            raise HeadTooLarge()
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        if self._in_head and self._head_size() > self.max_head_bytes:
            self._refuse()
            return
        super().send_400_response(msg)

    def _head_size(self) -> int:
        return len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)

    def _refuse(self) -> None:
        self._refused = True
        self.transport.write(_response_431(self.max_head_bytes))
        self.transport.close()
