"""What the console's web tests share: the people who sign in, a sign-in without an
identity provider, services that need no closing, and the application made of them under
Starlette's test client."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient

from legation_console.adapters.metrics import ConsoleMetrics
from legation_console.adapters.security import SESSION_CSRF, SESSION_PERSON
from legation_console.adapters.services import Services
from legation_console.adapters.web import create_app
from legation_console.domain.people import Person

PEOPLE = {
    "ana": Person("ana", "Ana <Lytic>", frozenset({"analyst", "viewer"}), frozenset({"central"})),
    "vic": Person("vic", "Vic", frozenset({"viewer"}), frozenset()),
}
#: The CSRF token of every session :class:`FakeSignIn` opens.
CSRF = "the-sessions-csrf-token"


class FakeSignIn:
    """Signs in whoever ``/sign-in?as=`` names, without an identity provider."""

    origin = "https://login.example"
    open_paths = ("/sign-in",)

    def routes(self) -> list[BaseRoute]:
        async def sign_in(request: Request) -> Response:
            request.session[SESSION_PERSON] = PEOPLE[request.query_params["as"]].to_session()
            request.session[SESSION_CSRF] = CSRF
            return RedirectResponse("/", status_code=303)

        return [Route("/sign-in", sign_in)]


class FakeServices(Services):
    """The fake clients a test gives; nothing to close."""

    async def close(self) -> None:
        pass


def console_client(services: Services, *, https: bool = False, public_url: str = "") -> TestClient:
    """The console over ``services``, signed in through :class:`FakeSignIn` (over https
    when ``https``; ``public_url`` as the console's own address)."""
    app = create_app(
        connect=lambda: services,
        signin=FakeSignIn(),
        metrics=ConsoleMetrics(),
        session_secret="s" * 40,
        session_max_age=3600,
        https=https,
        assets_dir=Path("."),
        public_url=public_url,
    )
    return TestClient(app, base_url="https://console.example" if https else "http://testserver")
