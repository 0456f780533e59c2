"""Engage: the inbox (live), a conversation's thread, assign to me, reply."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation_console.adapters.live import live_fragments
from legation_console.adapters.rendering import (
    Section,
    flash,
    form_of,
    person_of,
    render,
    render_fragment,
    services,
)
from legation_console.adapters.services import ServiceError
from legation_console.domain import access
from legation_console.domain.views import engage as views


def _mine(request: Request) -> bool:
    return request.query_params.get("mine") == "1"


async def _inbox(request: Request) -> views.InboxPage:
    person = person_of(request)
    mine = _mine(request)
    found = await services(request).engager.list_conversations(
        person, assignee=person.username if mine else ""
    )
    return views.inbox_page(found, person, mine, datetime.now(UTC))


async def inbox(request: Request) -> Response:
    """``GET /engage/inbox[?mine=1]``: the inbox, kept up to date by server-sent events."""
    return render(request, "engage/inbox.html", {"page": await _inbox(request)})


async def inbox_live(request: Request) -> Response:
    """``GET /engage/inbox/live[?mine=1]``: the inbox's rows whenever they change."""

    async def rows() -> str:
        return render_fragment(request, "engage/_inbox_rows.html", {"page": await _inbox(request)})

    def failed(error: ServiceError) -> str:
        return render_fragment(request, "engage/_live_error.html", {"service": error.service})

    return live_fragments(request, "inbox", rows, failed)


async def conversation(request: Request) -> Response:
    """``GET /engage/conversations/{conversation_id}``: the thread and the actions."""
    person = person_of(request)
    clients = services(request)
    found = await clients.engager.get_conversation(person, request.path_params["conversation_id"])
    saved = (
        await clients.engager.list_saved_replies(person)
        if access.may(person.roles, access.LIST_SAVED_REPLIES)
        else []
    )
    page = views.conversation_page(found, saved, person, datetime.now(UTC))
    form = views.ReplyForm("", "")
    return render(
        request,
        "engage/conversation.html",
        {"page": page, "form": form, "request_id": uuid.uuid4().hex},
    )


async def assign_to_me(request: Request) -> Response:
    """``POST /engage/conversations/{conversation_id}/assign``: the person takes it."""
    person = person_of(request)
    conversation_id = request.path_params["conversation_id"]
    await services(request).engager.assign(person, conversation_id, person.username)
    flash(request, "The conversation is assigned to you.")
    return RedirectResponse(
        request.url_for("engage-conversation", conversation_id=conversation_id), status_code=303
    )


async def set_status(request: Request) -> Response:
    """``POST /engage/conversations/{conversation_id}/status``: wait, close or reopen."""
    conversation_id = request.path_params["conversation_id"]
    status = views.status_change(str((await form_of(request)).get("status", "")))
    if status is None:
        flash(request, "Not done: that is not a state to choose.")
    else:
        try:
            await services(request).engager.set_status(person_of(request), conversation_id, status)
        except ServiceError as error:
            if error.code.name != "FAILED_PRECONDITION":
                raise
            flash(request, f"Not done: {error.detail}")
        else:
            flash(request, f"The conversation is now {views.STATUS_NAMES[status].lower()}.")
    return RedirectResponse(
        request.url_for("engage-conversation", conversation_id=conversation_id), status_code=303
    )


async def reply(request: Request) -> Response:
    """``POST /engage/conversations/{conversation_id}/reply``: a saved reply or a text;
    the form's ``request_id`` makes a second click the same reply."""
    person = person_of(request)
    conversation_id = request.path_params["conversation_id"]
    data = await form_of(request)
    form = views.reply_form(str(data.get("saved_reply_id", "")), str(data.get("text", "")))
    request_id = str(data.get("request_id", "")) or uuid.uuid4().hex
    clients = services(request)
    if not form.error:
        try:
            await clients.engager.reply(
                person,
                engager_pb.ReplyToConversationRequest(
                    request_id=request_id,
                    conversation_id=conversation_id,
                    text=form.text,
                    saved_reply_id=form.saved_reply_id,
                ),
            )
        except ServiceError as error:
            if not (error.invalid or error.code.name == "FAILED_PRECONDITION"):
                raise
            form = views.ReplyForm(form.saved_reply_id, form.text, error.detail)
        else:
            flash(request, "Your reply is on its way.")
            return RedirectResponse(
                request.url_for("engage-conversation", conversation_id=conversation_id),
                status_code=303,
            )
    found = await clients.engager.get_conversation(person, conversation_id)
    saved = await clients.engager.list_saved_replies(person)
    page = views.conversation_page(found, saved, person, datetime.now(UTC))
    return render(
        request,
        "engage/conversation.html",
        {"page": page, "form": form, "request_id": request_id},
        status_code=400,
    )


ROUTES: Sequence[BaseRoute] = [
    Route("/engage/inbox", inbox, name="engage-inbox"),
    Route("/engage/inbox/live", inbox_live, name="engage-inbox-live"),
    Route("/engage/conversations/{conversation_id}", conversation, name="engage-conversation"),
    Route(
        "/engage/conversations/{conversation_id}/assign",
        assign_to_me,
        methods=["POST"],
        name="engage-assign",
    ),
    Route(
        "/engage/conversations/{conversation_id}/status",
        set_status,
        methods=["POST"],
        name="engage-status",
    ),
    Route(
        "/engage/conversations/{conversation_id}/reply",
        reply,
        methods=["POST"],
        name="engage-reply",
    ),
]
SECTION: Section | None = Section(
    title="Engage",
    path="/engage/inbox",
    action=access.LIST_CONVERSATIONS,
    description="The inbox of conversations worth answering, by priority and deadline.",
)
