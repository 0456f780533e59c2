"""The web application: routes from the page registry, middleware (metrics, security
headers, session, sign-in, CSRF), static files and error pages. Page handlers use the
helpers of ``adapters/rendering.py`` (:func:`console`, :func:`person_of`, :func:`render`,
:func:`form_of`, :func:`flash`).

A page is one pattern, the same everywhere::

    route (adapters/pages/<section>.py)
      → gRPC call through a typed client (adapters/services.py), as the person
      → view model: a pure function (domain/views/<section>.py)
      → template (templates/<section>/<page>.html, extending base.html)

To add a page: write the view function and its unit test, the template, and the handler;
list the handler's ``Route`` in its module's ``ROUTES`` (and, for a new section, add the
module to :data:`legation_console.adapters.pages.PAGES` with its ``SECTION``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Protocol

import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from legation_console.adapters.metrics import ConsoleMetrics
from legation_console.adapters.pages import PAGES
from legation_console.adapters.rendering import STATIC, Console, Section, console, render, templates
from legation_console.adapters.security import CsrfProtect, RequireSignIn, SecurityHeaders
from legation_console.adapters.services import ServiceError, Services


class SignInRoutes(Protocol):
    """What the application needs of sign-in (:class:`~legation_console.adapters.signin.SignIn`
    in production, a stand-in in unit tests)."""

    @property
    def origin(self) -> str:
        """The identity provider's origin (forms may go there: signing out)."""
        ...

    @property
    def open_paths(self) -> tuple[str, ...]:
        """Paths that need no session."""
        ...

    def routes(self) -> list[BaseRoute]:
        """The sign-in, callback and sign-out routes."""
        ...


log = logging.getLogger(__name__)

SESSION_COOKIE = "legation_console"


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _favicon(request: Request) -> Response:
    return Response(status_code=204)  # no icon: browsers stop asking


async def _readyz(request: Request) -> Response:
    ready = console(request).ready
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


_STATUS_PAGES = {
    grpc.StatusCode.PERMISSION_DENIED: (403, "You do not have permission to do that"),
    grpc.StatusCode.UNAUTHENTICATED: (403, "You do not have permission to do that"),
    grpc.StatusCode.NOT_FOUND: (404, "Page not found"),
    grpc.StatusCode.UNAVAILABLE: (503, "Sorry, a service is not answering"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (503, "Sorry, a service is not answering"),
}


async def _service_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, ServiceError)
    status, title = _STATUS_PAGES.get(error.code, (502, "Sorry, something went wrong"))
    log.warning(
        "service call failed",
        extra={"service": error.service, "method": error.method, "code": error.code.name},
    )
    return render(
        request,
        "errors/error.html",
        {"title": title, "service": error.service, "detail": error.detail},
        status_code=status,
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    titles = {404: "Page not found", 405: "That cannot be done here", 401: "Sign in first"}
    title = titles.get(error.status_code, "Sorry, something went wrong")
    return render(
        request,
        "errors/error.html",
        {"title": title, "service": "", "detail": ""},
        status_code=error.status_code,
    )


class RequestMetrics:
    """Counts and times every request by its route's path template (never the raw path,
    which holds ids)."""

    def __init__(self, app: ASGIApp, metrics: ConsoleMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or (
                "static" if str(scope["path"]).startswith(("/assets/", "/static/")) else "other"
            )
            self.metrics.requests.labels(path, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(path).observe(time.perf_counter() - started)


def create_app(
    *,
    connect: Callable[[], Services],
    signin: SignInRoutes,
    metrics: ConsoleMetrics,
    session_secret: str,
    session_max_age: int,
    https: bool,
    assets_dir: Path,
    live_interval_seconds: float = 2.0,
    debug: bool = False,
    public_url: str = "",
) -> Starlette:
    """The console as an ASGI application; ``connect`` opens the services' channels when it
    starts (inside the server's event loop, which gRPC's asyncio channels need) and they are
    closed when it stops."""
    state: dict[str, Services] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state["services"] = app.state.console.services = connect()
        try:
            yield
        finally:
            await state["services"].close()

    routes: list[BaseRoute] = [
        Route("/healthz", _healthz, name="healthz"),
        Route("/readyz", _readyz, name="readyz"),
        Route("/favicon.ico", _favicon, name="favicon"),
        *signin.routes(),
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
        Mount("/assets", app=StaticFiles(directory=assets_dir, check_dir=False), name="assets"),
    ]
    sections: list[Section] = []
    for page in PAGES:
        routes.extend(page.ROUTES)
        if page.SECTION is not None:
            sections.append(page.SECTION)
    middleware = [
        Middleware(RequestMetrics, metrics=metrics),
        Middleware(SecurityHeaders, identity_provider=signin.origin, https=https),
        Middleware(
            SessionMiddleware,
            secret_key=session_secret,
            session_cookie=SESSION_COOKIE,
            max_age=session_max_age,
            same_site="lax",
            https_only=https,
        ),
        Middleware(
            RequireSignIn,
            open_paths=("/healthz", "/readyz", "/favicon.ico", *signin.open_paths),
            open_prefixes=("/assets/", "/static/"),
        ),
        Middleware(CsrfProtect, exempt_paths=()),
    ]
    app = Starlette(
        debug=debug,
        routes=routes,
        middleware=middleware,
        exception_handlers={ServiceError: _service_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.console = Console(
        services=None,
        templates=templates(),
        metrics=metrics,
        sections=tuple(sections),
        live_interval_seconds=live_interval_seconds,
        public_url=public_url,
    )
    return app
