"""Publish: posts, the calendar, a new post with a translation, submit, the approval
queue, approve or request changes, schedule, the deliveries followed live, and retry /
cancel / confirm a delivery."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2 as publisher_pb
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
from legation_console.domain import access, recurrence
from legation_console.domain.people import Person
from legation_console.domain.views import channel_variants as variants
from legation_console.domain.views import publish as views

# The posts pages show: changed in the last 90 days or due in the next 90.
WINDOW = timedelta(days=90)


async def _posts(request: Request) -> list[publish_pb2.PostState]:
    now = datetime.now(UTC)
    return await services(request).publisher.list_posts(
        person_of(request), now - WINDOW, now + WINDOW
    )


async def posts(request: Request) -> Response:
    """``GET /publish/posts[?page=N]``."""
    number = request.query_params.get("page", "1")
    page = views.posts_page(
        await _posts(request), person_of(request), int(number) if number.isdigit() else 1
    )
    return render(request, "publish/posts.html", {"page": page})


async def approvals(request: Request) -> Response:
    """``GET /publish/approvals``: the approval queue."""
    page = views.approvals_page(await _posts(request), person_of(request))
    return render(request, "publish/approvals.html", {"page": page})


def _channel_form(data: FormData) -> tuple[tuple[str, ...] | None, tuple[tuple[str, str], ...]]:
    """The ticked channels (None before the form was ever sent) and each channel's text."""
    chosen = tuple(str(v) for v in data.getlist("channels")) if "channels_sent" in data else None
    texts = tuple(
        (key.removeprefix("variant_"), str(value))
        for key, value in data.multi_items()
        if key.startswith("variant_") and str(value).strip()
    )
    return chosen, texts


async def _editor_counts(
    request: Request, form: views.PostForm
) -> tuple[variants.ChannelCount, ...]:
    channels = await services(request).publisher.list_channels(person_of(request))
    return variants.editor_counts(
        channels,
        form.body,
        dict(form.channel_texts),
        form.channels,
        variants.image(form.media_url, form.media_alt),
    )


async def new_post(request: Request) -> Response:
    """``GET /publish/posts/new``."""
    form = views.PostForm()
    context = {
        "form": form,
        "request_id": uuid.uuid4().hex,
        "channels": await _editor_counts(request, form),
    }
    return render(request, "publish/new_post.html", context)


async def channel_counts(request: Request) -> Response:
    """``POST /publish/posts/counts`` (htmx, while typing): each channel's count of the
    editor's text as the channel will get it."""
    data = await form_of(request)
    chosen, texts = _channel_form(data)
    form = views.PostForm(
        body=str(data.get("body", "")),
        media_url=str(data.get("media_url", "")).strip(),
        media_alt=str(data.get("media_alt", "")).strip(),
        channels=chosen,
        channel_texts=texts,
    )
    counts = await _editor_counts(request, form)
    return HTMLResponse(
        render_fragment(request, "publish/_channel_counts.html", {"channels": counts})
    )


async def create_post(request: Request) -> Response:
    """``POST /publish/posts``: the draft, then its translation; on a field error the form
    again (the request id makes a second try the same post)."""
    person = person_of(request)
    data = await form_of(request)
    chosen, texts = _channel_form(data)
    form = views.post_form_errors(
        views.PostForm(
            campaign=str(data.get("campaign", "")).strip(),
            language=str(data.get("language", "")).strip() or "en",
            title=str(data.get("title", "")),
            body=str(data.get("body", "")),
            translation_language=str(data.get("translation_language", "")).strip(),
            translation_title=str(data.get("translation_title", "")),
            translation_body=str(data.get("translation_body", "")),
            media_url=str(data.get("media_url", "")).strip(),
            media_alt=str(data.get("media_alt", "")).strip(),
            channels=chosen,
            channel_texts=texts,
        )
    )
    # A channel with its own text is one the post goes to.
    sent = list(dict.fromkeys([*(chosen or ()), *(name for name, _ in texts)]))
    request_id = str(data.get("request_id", "")) or uuid.uuid4().hex
    if not form.errors:
        publisher = services(request).publisher
        translating = False
        try:
            post = await publisher.create_post(
                person,
                publisher_pb.CreatePostRequest(
                    request_id=request_id,
                    campaign_id=form.campaign,
                    language=form.language,
                    content=publisher_pb.VariantContent(
                        title=form.title,
                        body=form.body,
                        media=[
                            publish_pb2.MediaRef(
                                url=form.media_url, kind="image", alt_text=form.media_alt
                            )
                        ]
                        if form.media_url
                        else [],
                        channel_variants=[
                            publish_pb2.ChannelVariant(channel=name, text=text)
                            for name, text in texts
                        ],
                    ),
                    channels=sent,
                ),
            )
            if form.has_translation and not any(
                v.language == form.translation_language for v in post.variants
            ):
                translating = True
                post = await publisher.add_translation(
                    person,
                    publisher_pb.AddTranslationRequest(
                        post_id=post.post_id,
                        language=form.translation_language,
                        source_language=form.language,
                        content=publisher_pb.VariantContent(
                            title=form.translation_title, body=form.translation_body
                        ),
                    ),
                )
        except ServiceError as error:
            if not error.invalid:
                raise
            form = views.with_service_error(form, error.detail, translating)
            field = variants.error_field(error.detail, [name for name, _ in texts])
            if field is not None and not translating:
                form = replace(form, errors=((field, form.errors[0][1]),))
        else:
            flash(request, "The draft is saved.")
            return RedirectResponse(
                request.url_for("publish-post", post_id=post.post_id), status_code=303
            )
    context = {
        "form": form,
        "request_id": request_id,
        "channels": await _editor_counts(request, form),
    }
    return render(request, "publish/new_post.html", context, status_code=400)


async def post(request: Request) -> Response:
    """``GET /publish/posts/{post_id}``."""
    person = person_of(request)
    publisher = services(request).publisher
    found = await publisher.get_post(person, request.path_params["post_id"])
    channels = await publisher.list_channels(person)
    per_variant = {
        variant.language: variants.post_counts(
            channels,
            found.channels,
            variant.body,
            [(cv.channel, cv.text) for cv in variant.channel_variants],
            variants.media_of(variant.media),
        )
        for variant in found.variants
    }
    context = {"page": views.post_page(found, person), "channel_variants": per_variant}
    return render(request, "publish/post.html", context)


async def deliveries_live(request: Request) -> Response:
    """``GET /publish/posts/{post_id}/deliveries/live``: the deliveries as they change."""
    person = person_of(request)
    post_id = request.path_params["post_id"]

    async def deliveries() -> str:
        found = await services(request).publisher.get_post(person, post_id)
        page = views.post_page(found, person)
        return render_fragment(request, "publish/_deliveries.html", {"page": page})

    def failed(error: ServiceError) -> str:
        return render_fragment(request, "engage/_live_error.html", {"service": error.service})

    return live_fragments(request, "deliveries", deliveries, failed)


def _command(
    call: Callable[[Person, str], Awaitable[publish_pb2.PostState]], done: str
) -> Callable[[Request], Awaitable[Response]]:
    """A button on the post page: the call, then the post again with a confirmation (or the
    publisher's refusal, in its words, when the post's state does not allow it)."""

    async def handle(request: Request) -> Response:
        post_id = request.path_params["post_id"]
        try:
            await call(person_of(request), post_id)
        except ServiceError as error:
            if error.code.name != "FAILED_PRECONDITION":
                raise
            flash(request, f"Not done: {error.detail}")
        else:
            flash(request, done)
        return RedirectResponse(request.url_for("publish-post", post_id=post_id), status_code=303)

    return handle


async def submit(request: Request) -> Response:
    """``POST /publish/posts/{post_id}/submit``."""
    handle = _command(services(request).publisher.submit, "The post is waiting for approval.")
    return await handle(request)


async def approve(request: Request) -> Response:
    """``POST /publish/posts/{post_id}/approve``: the next approval step."""
    handle = _command(services(request).publisher.approve, "You approved the post.")
    return await handle(request)


async def changes_form(request: Request) -> Response:
    """``GET /publish/posts/{post_id}/request-changes``: the reason to send back."""
    person = person_of(request)
    found = await services(request).publisher.get_post(person, request.path_params["post_id"])
    form = views.changes_form(found, person)
    return render(request, "publish/request_changes.html", {"form": form})


async def request_changes(request: Request) -> Response:
    """``POST /publish/posts/{post_id}/request-changes``: the post back to its author with
    the reason (required: the form again with the error on the field when it is empty)."""
    person = person_of(request)
    post_id = request.path_params["post_id"]
    data = await form_of(request)
    reason = str(data.get("reason", ""))
    publisher = services(request).publisher
    form = views.changes_form_errors(
        views.ChangesForm(post_id=post_id, title=str(data.get("title", ""))[:300], reason=reason)
    )
    if not form.errors:
        try:
            await publisher.request_changes(person, post_id, reason.strip())
        except ServiceError as error:
            if error.code.name == "FAILED_PRECONDITION":
                flash(request, f"Not done: {error.detail}")
                return RedirectResponse(
                    request.url_for("publish-post", post_id=post_id), status_code=303
                )
            if not error.invalid:
                raise
            form = views.with_changes_error(form, error.detail)
        else:
            flash(request, "You sent the post back to its author with your reason.")
            return RedirectResponse(
                request.url_for("publish-post", post_id=post_id), status_code=303
            )
    return render(request, "publish/request_changes.html", {"form": form}, status_code=400)


async def schedule(request: Request) -> Response:
    """``POST /publish/posts/{post_id}/schedule``: as soon as possible."""
    handle = _command(
        services(request).publisher.schedule_now, "The post is scheduled: it goes out now."
    )
    return await handle(request)


async def calendar(request: Request) -> Response:
    """``GET /publish/calendar?view=week|month&day=YYYY-MM-DD&campaign=&channel=&language=``."""
    now = datetime.now(UTC)
    today = now.date()
    query = views.calendar_query(request.query_params, today)
    start, end = views.calendar_window(query)
    found = await services(request).publisher.list_posts(
        person_of(request),
        start,
        end,
        campaign_id=query.campaign,
        channel=query.channel,
        language=query.language,
    )
    page = views.calendar_page(found, query, today, now)
    context = {"page": page, "max_shown": recurrence.MAX_SHOWN}
    return render(request, "publish/calendar.html", context)


async def _delivery_command(
    request: Request, call: Callable[[], Awaitable[publish_pb2.PostState]], done: str
) -> Response:
    """A delivery's button: the call, then the post again with a confirmation, or the
    publisher's refusal in its words when the delivery's state does not allow it."""
    post_id = request.path_params["post_id"]
    try:
        await call()
    except ServiceError as error:
        if error.code.name not in ("FAILED_PRECONDITION", "INVALID_ARGUMENT"):
            raise
        flash(request, f"Not done: {error.detail}")
    else:
        flash(request, done)
    return RedirectResponse(request.url_for("publish-post", post_id=post_id), status_code=303)


async def retry_delivery(request: Request) -> Response:
    """``POST /publish/posts/{post_id}/deliveries/{delivery_id}/retry``."""
    person, params = person_of(request), request.path_params
    publisher = services(request).publisher
    return await _delivery_command(
        request,
        lambda: publisher.retry_delivery(person, params["post_id"], params["delivery_id"]),
        "The delivery goes out again.",
    )


async def cancel_delivery(request: Request) -> Response:
    """``POST /publish/posts/{post_id}/deliveries/{delivery_id}/cancel``."""
    person, params = person_of(request), request.path_params
    publisher = services(request).publisher
    return await _delivery_command(
        request,
        lambda: publisher.cancel_delivery(person, params["post_id"], params["delivery_id"]),
        "The delivery is cancelled.",
    )


async def confirm_delivery(request: Request) -> Response:
    """``POST /publish/posts/{post_id}/deliveries/{delivery_id}/confirm``: found on its
    channel, with the channel's id and URL the person gives."""
    person, params = person_of(request), request.path_params
    data = await form_of(request)
    confirm = publisher_pb.ConfirmDeliveryRequest(
        post_id=params["post_id"],
        delivery_id=params["delivery_id"],
        channel_item_id=str(data.get("channel_item_id", "")).strip(),
        url=str(data.get("url", "")).strip(),
    )
    publisher = services(request).publisher
    return await _delivery_command(
        request,
        lambda: publisher.confirm_delivery(person, confirm),
        "The delivery is confirmed as published.",
    )


ROUTES: Sequence[BaseRoute] = [
    Route("/publish/calendar", calendar, name="publish-calendar"),
    Route("/publish/posts", posts, name="publish-posts"),
    Route("/publish/posts", create_post, methods=["POST"], name="publish-create-post"),
    Route("/publish/posts/new", new_post, name="publish-new-post"),
    Route("/publish/posts/counts", channel_counts, methods=["POST"], name="publish-channel-counts"),
    Route("/publish/approvals", approvals, name="publish-approvals"),
    Route("/publish/posts/{post_id}", post, name="publish-post"),
    Route(
        "/publish/posts/{post_id}/deliveries/live",
        deliveries_live,
        name="publish-deliveries-live",
    ),
    Route("/publish/posts/{post_id}/submit", submit, methods=["POST"], name="publish-submit"),
    Route("/publish/posts/{post_id}/approve", approve, methods=["POST"], name="publish-approve"),
    Route("/publish/posts/{post_id}/schedule", schedule, methods=["POST"], name="publish-schedule"),
    Route(
        "/publish/posts/{post_id}/request-changes",
        changes_form,
        name="publish-changes-form",
    ),
    Route(
        "/publish/posts/{post_id}/request-changes",
        request_changes,
        methods=["POST"],
        name="publish-request-changes",
    ),
    Route(
        "/publish/posts/{post_id}/deliveries/{delivery_id}/retry",
        retry_delivery,
        methods=["POST"],
        name="publish-retry-delivery",
    ),
    Route(
        "/publish/posts/{post_id}/deliveries/{delivery_id}/cancel",
        cancel_delivery,
        methods=["POST"],
        name="publish-cancel-delivery",
    ),
    Route(
        "/publish/posts/{post_id}/deliveries/{delivery_id}/confirm",
        confirm_delivery,
        methods=["POST"],
        name="publish-confirm-delivery",
    ),
]
SECTION: Section | None = Section(
    title="Publish",
    path="/publish/posts",
    action=access.LIST_POSTS,
    description="Drafts and translations, the approval queue, delivery to our channels.",
)
