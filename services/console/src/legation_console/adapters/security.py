"""The web application's protections, as ASGI middleware so no route can forget them:

- :class:`SecurityHeaders`: a strict Content-Security-Policy (scripts, styles, fonts and
  images only from the console itself: no inline script or style anywhere), no framing, no
  MIME sniffing, no caching of pages, HSTS over https;
- :class:`RequireSignIn`: every path but sign-in, health and static files needs a person
  in the session;
- :class:`CsrfProtect`: every POST (and other unsafe method) must carry the session's CSRF
  token, as the ``csrf_token`` form field or the ``X-CSRF-Token`` header (htmx), else 403.

The session itself is Starlette's signed cookie (HttpOnly, SameSite=Lax, Secure over https),
installed by :func:`legation_console.adapters.web.create_app`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Collection
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from legation_console.domain.people import Person

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SESSION_PERSON = "person"
SESSION_CSRF = "csrf"
STATIC_PREFIXES = ("/assets/", "/static/")


def new_csrf_token() -> str:
    """A fresh random token for a new session."""
    return secrets.token_urlsafe(32)


def content_security_policy(identity_provider: str) -> str:
    """The policy of every response; forms may also go to the identity provider (signing
    out redirects there)."""
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "font-src 'self'",
            "connect-src 'self'",
            "manifest-src 'self'",
            f"form-action 'self' {identity_provider}".strip(),
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


class SecurityHeaders:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp, *, identity_provider: str, https: bool) -> None:
        self.app = app
        self.headers = {
            "Content-Security-Policy": content_security_policy(identity_provider),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        }
        if https:
            self.headers["Strict-Transport-Security"] = "max-age=31536000"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope["path"]).startswith(STATIC_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
                if not static and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def session_person(scope: Scope) -> Person | None:
    """The person of the request's session, if signed in."""
    session = scope.get("session")
    if not isinstance(session, dict):
        return None
    return Person.from_session(session.get(SESSION_PERSON))


class RequireSignIn:
    """Sends anyone without a signed-in session to sign in (a page) or answers 401 (htmx
    and other non-GET requests)."""

    def __init__(self, app: ASGIApp, open_paths: Collection[str], open_prefixes: Collection[str]):
        self.app = app
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = tuple(open_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        if (
            path in self.open_paths
            or path.startswith(self.open_prefixes)
            or session_person(scope) is not None
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        target = path + (f"?{scope['query_string'].decode()}" if scope["query_string"] else "")
        sign_in = "/sign-in?next=" + quote(target, safe="")
        if scope["method"] == "GET" and "hx-request" not in headers:
            await _respond(send, 303, b"", [(b"location", sign_in.encode())])
            return
        await _respond(
            send,
            401,
            b"Your session has ended: sign in again.",
            [(b"hx-redirect", sign_in.encode()), (b"content-type", b"text/plain; charset=utf-8")],
        )


class CsrfProtect:
    """Refuses an unsafe request (POST, PUT, PATCH, DELETE) whose CSRF token is missing or
    is not the session's, with 403; the body (at most ``max_body`` bytes) is read here and
    handed on unchanged."""

    SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

    def __init__(
        self, app: ASGIApp, exempt_paths: Collection[str] = (), max_body: int = 1024 * 1024
    ) -> None:
        self.app = app
        self.exempt_paths = frozenset(exempt_paths)
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in self.SAFE
            or scope["path"] in self.exempt_paths
        ):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = bool(message.get("more_body"))
            if len(body) > self.max_body:
                await _respond(send, 413, b"The form is too large.", [])
                return
        headers = Headers(scope=scope)
        provided = headers.get(CSRF_HEADER) or _form_field(headers, body, CSRF_FIELD)
        session: Any = scope.get("session") or {}
        expected = session.get(SESSION_CSRF) if isinstance(session, dict) else None
        if not (
            isinstance(expected, str)
            and provided
            and hmac.compare_digest(provided.encode(), expected.encode())
        ):
            await _respond(
                send,
                403,
                b"This form did not come from your console session (its security token is "
                b"missing or has expired). Go back, reload the page and try again.",
                [(b"content-type", b"text/plain; charset=utf-8")],
            )
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _form_field(headers: Headers, body: bytes, name: str) -> str | None:
    if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).get(name)
    return values[0] if values else None


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
