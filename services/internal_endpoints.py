"""Internal endpoints (the projector's read API, metrics) are for the
deployment itself, not for clients: they listen on loopback by default, and
when bound to any other address they need ``DISPATCH_INTERNAL_TOKEN`` — the
process refuses to start without it, and every request must carry
``Authorization: Bearer <token>`` (health probes excepted)."""

from __future__ import annotations

import hmac
import ipaddress
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app
from starlette.types import ASGIApp, Receive, Scope, Send

from services.secret_env import env_secret

TOKEN_VARIABLE = "DISPATCH_INTERNAL_TOKEN"
# Kubernetes probes carry no token; they say nothing an outsider could use.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})


class InternalTokenMissing(Exception):
    pass


def internal_token() -> str:
    return env_secret(TOKEN_VARIABLE)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_for(host: str, what: str) -> str:
    """The token ``what`` must require when listening on ``host``: empty on
    loopback without one configured; InternalTokenMissing when bound
    elsewhere without one."""
    token = internal_token()
    if not token and not is_loopback(host):
        raise InternalTokenMissing(
            f"{what} listens on {host}, beyond loopback, so it needs {TOKEN_VARIABLE} "
            f"(or {TOKEN_VARIABLE}_FILE): every request must then carry "
            f"'Authorization: Bearer <token>'"
        )
    return token


def bearer_matches(authorization: str | None, token: str) -> bool:
    if not token:
        return True
    expected = f"Bearer {token}".encode()
    return hmac.compare_digest((authorization or "").encode(), expected)


_UNAUTHORIZED = (
    b'{"type":"https://dispatch.dev/problems/unauthorized","title":"Invalid credentials",'
    b'"status":401,"detail":"internal endpoint: Authorization: Bearer <internal token>"}'
)


class RequireInternalToken:
    """ASGI middleware: 401 for requests without the token (except probes)."""

    def __init__(self, app: ASGIApp, token: str, *, paths: Iterable[str] | None = None) -> None:
        self._app = app
        self._token = token
        self._paths = frozenset(paths) if paths is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._guarded(scope["path"]):
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            if not bearer_matches(authorization, self._token):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/problem+json"),
                            (b"www-authenticate", b'Bearer realm="internal"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": _UNAUTHORIZED})
                return
        await self._app(scope, receive, send)

    def _guarded(self, path: str) -> bool:
        if self._paths is not None:
            return path in self._paths
        return path not in OPEN_PATHS


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def serve_metrics(port: int, host: str, token: str) -> WSGIServer:
    """Prometheus metrics on ``host:port`` in a daemon thread, behind the token."""
    metrics = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not bearer_matches(environ.get("HTTP_AUTHORIZATION"), token):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "application/problem+json"),
                 ("WWW-Authenticate", 'Bearer realm="internal"')],
            )  # fmt: skip
            return [_UNAUTHORIZED]
        result: Iterable[bytes] = metrics(environ, start_response)
        return result

    server = make_server(host, port, app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
