"""Operator authentication for the console.

Operators sign in with the console token from configuration (``CONSOLE_TOKEN``),
never with an application's API key: the console sees every application's
dispatches. A signed-in browser holds a cookie that names its expiry and carries
an HMAC of it keyed by the token, so rotating the token signs everyone out and
nothing is kept server-side. Scripts may send ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from starlette.requests import Request

COOKIE = "dispatch_console"
SESSION_S = 12 * 3600


def _signature(token: str, expires: int) -> str:
    return hmac.new(
        token.encode(), f"console-session:{expires}".encode(), hashlib.sha256
    ).hexdigest()


def token_matches(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def new_session(token: str, now: float | None = None) -> str:
    expires = int((now if now is not None else time.time()) + SESSION_S)
    return f"{expires}.{_signature(token, expires)}"


def session_valid(cookie: str, token: str, now: float | None = None) -> bool:
    expires_text, _, signature = cookie.partition(".")
    if not expires_text.isdigit():
        return False
    expires = int(expires_text)
    if expires < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature.encode(), _signature(token, expires).encode())


def signed_in(request: Request, token: str) -> bool:
    bearer = request.headers.get("authorization", "")
    if bearer.lower().startswith("bearer "):
        return token_matches(bearer[7:].strip(), token)
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and session_valid(cookie, token)
