"""What every page handler uses: the application's :class:`Console`, the signed-in
:func:`person_of` the request, :func:`render` a template with what every page shows,
:func:`form_of` a POST, :func:`flash` a confirmation. See ``adapters/web.py`` for the
pattern a page follows."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import jinja2
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from legation_console.adapters.metrics import ConsoleMetrics
from legation_console.adapters.security import CSRF_FIELD, SESSION_CSRF, session_person
from legation_console.adapters.services import Services
from legation_console.domain import access
from legation_console.domain.people import Person
from legation_console.domain.ready_reports import ReadyReports


@dataclass(frozen=True)
class Section:
    """A top-level part of the console in the navigation: shown to whoever may take its
    ``action`` (its main read)."""

    title: str
    path: str
    action: access.Action
    description: str


log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"
SESSION_FLASH = "flash"


@dataclass
class Console:
    """What page handlers need, on ``app.state.console``."""

    services: Services | None  # connected when the application starts
    templates: Jinja2Templates
    metrics: ConsoleMetrics
    sections: tuple[Section, ...]
    live_interval_seconds: float
    ready: bool = True
    # The console's own base URL: notifications' links into it are shown as paths.
    public_url: str = ""
    # Reports drawn with their progress shown, until their download link is followed.
    reports: ReadyReports = field(default_factory=ReadyReports)


def console(request: Request) -> Console:
    """The application's :class:`Console`."""
    return cast(Console, request.app.state.console)


def services(request: Request) -> Services:
    """The clients of the four services (open once the application has started)."""
    connected = console(request).services
    if connected is None:
        raise HTTPException(503, "the console is starting")
    return connected


def person_of(request: Request) -> Person:
    """The signed-in person (:class:`RequireSignIn` lets no one else reach a page)."""
    person = session_person(request.scope)
    if person is None:
        raise HTTPException(401, "sign in first")
    return person


def flash(request: Request, message: str) -> None:
    """A confirmation shown once, on the next page rendered (after a redirect)."""
    request.session.setdefault(SESSION_FLASH, []).append(message)


async def form_of(request: Request) -> FormData:
    """The request's form (its CSRF token was checked by :class:`CsrfProtect`)."""
    return await request.form(max_files=0, max_fields=200)


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """``template`` with ``context`` plus what every page shows: the person, the sections
    they may open, the CSRF token for forms, confirmations waiting to be shown."""
    person = session_person(request.scope)
    sections = [
        section
        for section in console(request).sections
        if person is not None and access.may(person.roles, section.action)
    ]
    messages = request.session.pop(SESSION_FLASH, []) if person is not None else []
    full = {
        "request": request,
        "person": person,
        "sections": sections,
        "current_path": request.url.path,
        "csrf_token": request.session.get(SESSION_CSRF, ""),
        "csrf_field": CSRF_FIELD,
        "messages": messages,
        **context,
    }
    response = console(request).templates.TemplateResponse(
        request, template, full, status_code=status_code
    )
    return cast(HTMLResponse, response)


def templates() -> Jinja2Templates:
    """The Jinja environment: autoescaping on (text from mentions and posts is data, never
    markup), undefined variables an error."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=environment)


def render_fragment(request: Request, template: str, context: dict[str, Any]) -> str:
    """``template`` as a string (a live update's HTML), with the person and the CSRF token
    like a page."""
    full = {
        "request": request,
        "person": session_person(request.scope),
        "csrf_token": request.session.get(SESSION_CSRF, ""),
        "csrf_field": CSRF_FIELD,
        **context,
    }
    return console(request).templates.get_template(template).render(full)
