"""Notifications: the header's bell (live), the person's inbox with mark read / mark all
read, and the messages the notifier could not finish (retry / cancel / confirm) for the
roles its policy allows."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from legation_console.adapters.live import live_fragments
from legation_console.adapters.rendering import (
    Section,
    console,
    flash,
    form_of,
    person_of,
    render,
    render_fragment,
    services,
)
from legation_console.adapters.services import NotifierClient, ServiceError
from legation_console.domain import access
from legation_console.domain.views import notify as views

MAX_PAGE_TOKEN = 64


def _notifier(request: Request) -> NotifierClient:
    client = services(request).notifier
    if client is None:
        raise HTTPException(503, "the notifier is not connected")
    return client


async def inbox(request: Request) -> Response:
    """``GET /notifications``: the person's notifications, unread first, a page at a time."""
    person = person_of(request)
    page_token = request.query_params.get("page", "")
    if len(page_token) > MAX_PAGE_TOKEN:
        raise HTTPException(400, f"page: at most {MAX_PAGE_TOKEN} characters")
    try:
        response = await _notifier(request).list_my_notifications(person, page_token=page_token)
    except ServiceError as error:
        if not error.invalid:
            raise
        raise HTTPException(400, error.detail) from None
    page = views.inbox_page(response, person, console(request).public_url)
    return render(request, "notify/inbox.html", {"page": page})


async def bell_live(request: Request) -> Response:
    """``GET /notifications/bell/live``: the bell's count as it changes (server-sent
    events; the header of every page listens)."""
    person = person_of(request)
    notifier = _notifier(request)

    async def bell() -> str:
        response = await notifier.list_my_notifications(person, limit=1, unread_only=True)
        return render_fragment(
            request, "notify/_bell.html", {"bell": views.Bell(response.unread_count)}
        )

    def failed(error: ServiceError) -> str:
        return render_fragment(request, "notify/_bell.html", {"bell": None})

    return live_fragments(request, "bell", bell, failed)


async def mark_read(request: Request) -> Response:
    """``POST /notifications/read``: one notification (``message_id``) or all (``all``)."""
    person = person_of(request)
    data = await form_of(request)
    message_id = str(data.get("message_id", ""))
    everything = data.get("all") == "yes"
    if not everything and not message_id:
        raise HTTPException(400, "message_id: is required (or all)")
    try:
        response = await _notifier(request).mark_read(
            person, [] if everything else [message_id], everything=everything
        )
    except ServiceError as error:
        if error.code.name not in ("NOT_FOUND", "INVALID_ARGUMENT"):
            raise
        flash(request, f"Not done: {error.detail}")
    else:
        flash(request, "All notifications marked read." if everything else "Marked read.")
        del response
    return RedirectResponse(request.url_for("notify-inbox"), status_code=303)


async def preferences(request: Request) -> Response:
    """``GET /notifications/preferences``: the person's effective preferences, read-only."""
    person = person_of(request)
    found = await _notifier(request).my_preferences(person)
    return render(request, "notify/preferences.html", {"page": views.preferences_page(found)})


async def stuck(request: Request) -> Response:
    """``GET /notifications/deliveries``: messages that failed or need a check."""
    person = person_of(request)
    if not access.may(person.roles, access.LIST_MESSAGES):
        raise HTTPException(403, "your roles do not allow this page")
    found = await _notifier(request).list_messages(person, list(views.STATUS_WORDS))
    return render(request, "notify/deliveries.html", {"page": views.stuck_page(found, person)})


async def change_message(request: Request) -> Response:
    """``POST /notifications/deliveries/{message_id}/{operation}``: retry, cancel, confirm."""
    person = person_of(request)
    operation = request.path_params["operation"]
    if operation not in ("retry", "cancel", "confirm"):
        raise HTTPException(404, "no such action")
    try:
        await _notifier(request).change_message(
            person, operation, request.path_params["message_id"]
        )
    except ServiceError as error:
        if error.code.name not in ("FAILED_PRECONDITION", "INVALID_ARGUMENT", "NOT_FOUND"):
            raise
        flash(request, f"Not done: {error.detail}")
    else:
        done = {
            "retry": "The message goes out again.",
            "cancel": "The message is cancelled.",
            "confirm": "The message is recorded as delivered.",
        }
        flash(request, done[operation])
    return RedirectResponse(request.url_for("notify-deliveries"), status_code=303)


ROUTES: Sequence[BaseRoute] = [
    Route("/notifications", inbox, name="notify-inbox"),
    Route("/notifications/bell/live", bell_live, name="notify-bell-live"),
    Route("/notifications/read", mark_read, methods=["POST"], name="notify-read"),
    Route("/notifications/preferences", preferences, name="notify-preferences"),
    Route("/notifications/deliveries", stuck, name="notify-deliveries"),
    Route(
        "/notifications/deliveries/{message_id}/{operation}",
        change_message,
        methods=["POST"],
        name="notify-change-message",
    ),
]
SECTION: Section | None = None
