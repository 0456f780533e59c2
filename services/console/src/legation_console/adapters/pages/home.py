"""The start page: the sections the person may open, and who they are signed in as."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from legation_console.adapters.rendering import Section, person_of, render
from legation_console.domain.views.home import home_page


async def home(request: Request) -> Response:
    """``GET /``."""
    return render(request, "home.html", {"page": home_page(person_of(request))})


ROUTES: Sequence[BaseRoute] = [Route("/", home, name="home")]
SECTION: Section | None = None
