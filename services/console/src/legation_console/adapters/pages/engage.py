"""Engage: the inbox (live, filtered), a conversation's thread, assign, label, prioritise,
reply, reply approval, questions campaigns and the partner register."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
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
    filters = views.inbox_filters(request.query_params)
    found = await services(request).engager.list_conversations(
        person,
        assignee=person.username if mine else filters.assignee,
        status=filters.status_value,
        label=filters.label,
    )
    return views.inbox_page(found, person, mine, datetime.now(UTC), filters)


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


def _back(request: Request, conversation_id: str) -> Response:
    return RedirectResponse(
        request.url_for("engage-conversation", conversation_id=conversation_id), status_code=303
    )


async def assign_to_me(request: Request) -> Response:
    """``POST /engage/conversations/{conversation_id}/assign``: the person takes it, or
    gives it to the colleague named in ``officer``."""
    person = person_of(request)
    conversation_id = request.path_params["conversation_id"]
    officer = str((await form_of(request)).get("officer", "")).strip()[:200] or person.username
    await services(request).engager.assign(person, conversation_id, officer)
    if officer == person.username:
        flash(request, "The conversation is assigned to you.")
    else:
        flash(request, f"The conversation is assigned to {officer}.")
    return _back(request, conversation_id)


async def label(request: Request) -> Response:
    """``POST /engage/conversations/{conversation_id}/labels``: add the labels typed in
    ``add`` (comma-separated), or remove the one in ``remove``."""
    conversation_id = request.path_params["conversation_id"]
    data = await form_of(request)
    add = views.labels_of(str(data.get("add", "")))
    remove = views.labels_of(str(data.get("remove", "")))
    if not add and not remove:
        flash(request, "Not done: type a label to add.")
        return _back(request, conversation_id)
    try:
        await services(request).engager.label(person_of(request), conversation_id, add, remove)
    except ServiceError as error:
        if not error.invalid:
            raise
        flash(request, f"Not done: {error.detail}")
    else:
        done = [f"added {', '.join(add)}"] if add else []
        done += [f"removed {', '.join(remove)}"] if remove else []
        flash(request, f"Labels {' and '.join(done)}.")
    return _back(request, conversation_id)


async def prioritize(request: Request) -> Response:
    """``POST /engage/conversations/{conversation_id}/priority``: override the triage."""
    conversation_id = request.path_params["conversation_id"]
    priority = views.priority_choice(str((await form_of(request)).get("priority", "")))
    if priority is None:
        flash(request, "Not done: that is not a priority to choose.")
    else:
        await services(request).engager.prioritize(person_of(request), conversation_id, priority)
        flash(request, f"The priority is now {views.PRIORITY_NAMES[priority].lower()}.")
    return _back(request, conversation_id)


async def review_reply(request: Request) -> Response:
    """``POST /engage/conversations/{conversation_id}/replies/{reply_id}/review``: approve
    or reject (with a comment) a reply awaiting approval; back to where it was reviewed."""
    conversation_id = request.path_params["conversation_id"]
    data = await form_of(request)
    comment = str(data.get("comment", "")).strip()
    approve, problem = views.review_decision(str(data.get("decision", "")), comment)
    if approve is not None and not problem:
        try:
            await services(request).engager.review_reply(
                person_of(request),
                conversation_id,
                request.path_params["reply_id"],
                approve,
                comment,
            )
        except ServiceError as error:
            if not (error.invalid or error.code.name == "FAILED_PRECONDITION"):
                raise
            problem = error.detail
    if problem:
        flash(request, f"Not done: {problem}")
    else:
        flash(request, "The reply is approved." if approve else "The reply is rejected.")
    if data.get("back") == "approvals":
        return RedirectResponse(request.url_for("engage-approvals"), status_code=303)
    return _back(request, conversation_id)


async def approvals(request: Request) -> Response:
    """``GET /engage/approvals``: the replies waiting for approval."""
    person = person_of(request)
    found = await services(request).engager.list_conversations(person)
    return render(request, "engage/approvals.html", {"page": views.approvals_page(found, person)})


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
    form = views.reply_form(
        str(data.get("saved_reply_id", "")),
        str(data.get("text", "")),
        str(data.get("language", "")),
    )
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
                    language=form.language,
                ),
            )
        except ServiceError as error:
            if not (error.invalid or error.code.name == "FAILED_PRECONDITION"):
                raise
            form = views.ReplyForm(form.saved_reply_id, form.text, error.detail, form.language)
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


async def questions(request: Request) -> Response:
    """``GET /engage/questions[?open=1&page=…]``: the questions campaigns, most recently
    changed first, and (for officers) the form to start one. ``?id=…`` opens one by its
    id (links from before the list)."""
    questions_id = request.query_params.get("id", "").strip()
    if questions_id:
        return RedirectResponse(
            request.url_for("engage-questions-campaign", questions_id=questions_id),
            status_code=303,
        )
    return await _questions_index(request, views.QuestionsCampaignForm("", "", "", "", {}))


async def _questions_index(
    request: Request, form: views.QuestionsCampaignForm, status_code: int = 200
) -> Response:
    person = person_of(request)
    open_only = request.query_params.get("open") == "1"
    found = await services(request).engager.list_questions_campaigns(
        person, open_only=open_only, page_token=request.query_params.get("page", "")
    )
    return render(
        request,
        "engage/questions.html",
        {
            "page": views.questions_campaigns_page(found, open_only),
            "form": form,
            "can_create": access.may(person.roles, access.CREATE_QUESTIONS_CAMPAIGN),
            "request_id": uuid.uuid4().hex,
        },
        status_code=status_code,
    )


async def create_questions(request: Request) -> Response:
    """``POST /engage/questions``: a new questions campaign; the engager's field errors
    land on their fields."""
    data = await form_of(request)
    form = views.questions_campaign_form(
        str(data.get("title", "")),
        str(data.get("issue_id", "")),
        str(data.get("hashtag", "")),
        str(data.get("answer_channel", "")),
    )
    if not form.errors:
        try:
            created = await services(request).engager.create_questions_campaign(
                person_of(request),
                engager_pb.CreateQuestionsCampaignRequest(
                    request_id=str(data.get("request_id", "")) or uuid.uuid4().hex,
                    issue_id=form.issue_id,
                    title=form.title,
                    hashtag=form.hashtag,
                    answer_channel=form.answer_channel,
                ),
            )
        except ServiceError as error:
            if not error.invalid:
                raise
            field = error.detail.split(":", 1)[0].strip()
            key = field if field in ("title", "issue_id", "hashtag", "answer_channel") else "title"
            form = views.QuestionsCampaignForm(
                form.title, form.issue_id, form.hashtag, form.answer_channel, {key: error.detail}
            )
        else:
            flash(request, "The questions campaign is open.")
            return RedirectResponse(
                request.url_for(
                    "engage-questions-campaign",
                    questions_id=created.questions_campaign.questions_id,
                ),
                status_code=303,
            )
    return await _questions_index(request, form, status_code=400)


async def questions_campaign(request: Request) -> Response:
    """``GET /engage/questions/{questions_id}``: its questions and what to do with them."""
    person = person_of(request)
    found = await services(request).engager.get_questions_campaign(
        person, request.path_params["questions_id"]
    )
    return render(
        request,
        "engage/questions_campaign.html",
        {"page": views.questions_campaign_page(found, person)},
    )


def _to_campaign(request: Request) -> Response:
    return RedirectResponse(
        request.url_for(
            "engage-questions-campaign", questions_id=request.path_params["questions_id"]
        ),
        status_code=303,
    )


async def moderate_question(request: Request) -> Response:
    """``POST /engage/questions/{questions_id}/questions/{question_id}/moderate``."""
    data = await form_of(request)
    decision = str(data.get("decision", ""))
    if decision not in ("accept", "reject"):
        flash(request, "Not done: choose to accept or reject.")
        return _to_campaign(request)
    try:
        await services(request).engager.moderate_question(
            person_of(request),
            request.path_params["questions_id"],
            request.path_params["question_id"],
            decision == "accept",
            str(data.get("note", "")).strip(),
        )
    except ServiceError as error:
        if not (error.invalid or error.code.name == "FAILED_PRECONDITION"):
            raise
        flash(request, f"Not done: {error.detail}")
    else:
        flash(request, f"The question is {decision}ed.")
    return _to_campaign(request)


async def answer_question(request: Request) -> Response:
    """``POST /engage/questions/{questions_id}/questions/{question_id}/answer``."""
    text = str((await form_of(request)).get("text", "")).strip()
    if not text:
        flash(request, "Not done: write the answer.")
        return _to_campaign(request)
    try:
        await services(request).engager.answer_question(
            person_of(request),
            request.path_params["questions_id"],
            request.path_params["question_id"],
            text,
        )
    except ServiceError as error:
        if not (error.invalid or error.code.name == "FAILED_PRECONDITION"):
            raise
        flash(request, f"Not done: {error.detail}")
    else:
        flash(request, "The answer is published.")
    return _to_campaign(request)


async def partners(request: Request) -> Response:
    """``GET /engage/partners``: the partner register, and the form to add one."""
    return await _partners(request, views.partner_form({}), {})


async def _partners(
    request: Request,
    form: views.PartnerForm,
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    person = person_of(request)
    found = await services(request).engager.list_partners(person)
    return render(
        request,
        "engage/partners.html",
        {"page": views.partners_page(found, person), "form": form.request, "errors": errors},
        status_code=status_code,
    )


async def register_partner(request: Request) -> Response:
    """``POST /engage/partners``: a new partner; the engager's field errors on the form."""
    data = await form_of(request)
    form = views.partner_form({key: str(value) for key, value in data.items()})
    errors = dict(form.errors)
    if not errors:
        try:
            partner = await services(request).engager.register_partner(
                person_of(request), form.request
            )
        except ServiceError as error:
            if not error.invalid:
                raise
            field = error.detail.split(":", 1)[0].strip()
            key = field if field in ("countries", "languages", "issue_ids", "kind") else "name"
            errors[key] = error.detail
        else:
            flash(request, f"{partner.name} is in the register.")
            return RedirectResponse(
                request.url_for("engage-partner", partner_id=partner.partner_id), status_code=303
            )
    return await _partners(request, form, errors, status_code=400)


async def partner(request: Request) -> Response:
    """``GET /engage/partners/{partner_id}``: a partner and its timeline."""
    person = person_of(request)
    found = await services(request).engager.get_partner(person, request.path_params["partner_id"])
    return render(request, "engage/partner.html", {"page": views.partner_page(found, person)})


def _to_partner(request: Request) -> Response:
    return RedirectResponse(
        request.url_for("engage-partner", partner_id=request.path_params["partner_id"]),
        status_code=303,
    )


async def partner_stage(request: Request) -> Response:
    """``POST /engage/partners/{partner_id}/stage``: the relationship moves on."""
    person = person_of(request)
    clients = services(request)
    found = await clients.engager.get_partner(person, request.path_params["partner_id"])
    change = views.restage(found, str((await form_of(request)).get("stage", "")))
    if change is None:
        flash(request, "Not done: that is not a stage to choose.")
    else:
        await clients.engager.register_partner(person, change)
        flash(request, f"The relationship is now: {views.STAGE_NAMES[change.stage].lower()}.")
    return _to_partner(request)


async def record_activity(request: Request) -> Response:
    """``POST /engage/partners/{partner_id}/activities``: add to the timeline."""
    data = await form_of(request)
    form = views.activity_form(
        str(data.get("kind", "")),
        str(data.get("title", "")),
        str(data.get("url", "")),
        str(data.get("note", "")),
    )
    if form.error:
        flash(request, f"Not done: {form.error}")
        return _to_partner(request)
    activity = engager_pb.RecordPartnerActivityRequest(
        partner_id=request.path_params["partner_id"],
        request_id=str(data.get("request_id", "")) or uuid.uuid4().hex,
        kind=form.kind,  # type: ignore[arg-type]
        title=form.title,
        url=form.url,
        note=form.note,
    )
    activity.occurred_at.FromDatetime(datetime.now(UTC))
    try:
        await services(request).engager.record_partner_activity(person_of(request), activity)
    except ServiceError as error:
        if not error.invalid:
            raise
        flash(request, f"Not done: {error.detail}")
    else:
        flash(request, "The activity is on the timeline.")
    return _to_partner(request)


def _post(path: str, handler: Callable[[Request], Awaitable[Response]], name: str) -> Route:
    return Route(path, handler, methods=["POST"], name=name)


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
    _post("/engage/conversations/{conversation_id}/labels", label, "engage-labels"),
    _post("/engage/conversations/{conversation_id}/priority", prioritize, "engage-priority"),
    _post(
        "/engage/conversations/{conversation_id}/replies/{reply_id}/review",
        review_reply,
        "engage-review",
    ),
    Route("/engage/approvals", approvals, name="engage-approvals"),
    Route("/engage/questions", questions, name="engage-questions"),
    _post("/engage/questions", create_questions, "engage-questions-create"),
    Route("/engage/questions/{questions_id}", questions_campaign, name="engage-questions-campaign"),
    _post(
        "/engage/questions/{questions_id}/questions/{question_id}/moderate",
        moderate_question,
        "engage-moderate",
    ),
    _post(
        "/engage/questions/{questions_id}/questions/{question_id}/answer",
        answer_question,
        "engage-answer",
    ),
    Route("/engage/partners", partners, name="engage-partners"),
    _post("/engage/partners", register_partner, "engage-partners-register"),
    Route("/engage/partners/{partner_id}", partner, name="engage-partner"),
    _post("/engage/partners/{partner_id}/stage", partner_stage, "engage-partner-stage"),
    _post("/engage/partners/{partner_id}/activities", record_activity, "engage-partner-activity"),
]
SECTION: Section | None = Section(
    title="Engage",
    path="/engage/inbox",
    action=access.LIST_CONVERSATIONS,
    description="The inbox of conversations worth answering, by priority and deadline.",
)
