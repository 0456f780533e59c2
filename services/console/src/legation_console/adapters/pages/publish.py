"""Publish: posts, a new post with a translation, submit, the approval queue, approve,
schedule, and the deliveries followed live."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
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
from legation_console.domain import access
from legation_console.domain.people import Person
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


async def new_post(request: Request) -> Response:
    """``GET /publish/posts/new``."""
    context = {"form": views.PostForm(), "request_id": uuid.uuid4().hex}
    return render(request, "publish/new_post.html", context)


async def create_post(request: Request) -> Response:
    """``POST /publish/posts``: the draft, then its translation; on a field error the form
    again (the request id makes a second try the same post)."""
    person = person_of(request)
    data = await form_of(request)
    form = views.post_form_errors(
        views.PostForm(
            campaign=str(data.get("campaign", "")).strip(),
            language=str(data.get("language", "")).strip() or "en",
            title=str(data.get("title", "")),
            body=str(data.get("body", "")),
            translation_language=str(data.get("translation_language", "")).strip(),
            translation_title=str(data.get("translation_title", "")),
            translation_body=str(data.get("translation_body", "")),
        )
    )
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
                    content=publisher_pb.VariantContent(title=form.title, body=form.body),
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
        else:
            flash(request, "The draft is saved.")
            return RedirectResponse(
                request.url_for("publish-post", post_id=post.post_id), status_code=303
            )
    context = {"form": form, "request_id": request_id}
    return render(request, "publish/new_post.html", context, status_code=400)


async def post(request: Request) -> Response:
    """``GET /publish/posts/{post_id}``."""
    person = person_of(request)
    found = await services(request).publisher.get_post(person, request.path_params["post_id"])
    return render(request, "publish/post.html", {"page": views.post_page(found, person)})


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


async def schedule(request: Request) -> Response:
    """``POST /publish/posts/{post_id}/schedule``: as soon as possible."""
    handle = _command(
        services(request).publisher.schedule_now, "The post is scheduled: it goes out now."
    )
    return await handle(request)


ROUTES: Sequence[BaseRoute] = [
    Route("/publish/posts", posts, name="publish-posts"),
    Route("/publish/posts", create_post, methods=["POST"], name="publish-create-post"),
    Route("/publish/posts/new", new_post, name="publish-new-post"),
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
]
SECTION: Section | None = Section(
    title="Publish",
    path="/publish/posts",
    action=access.LIST_POSTS,
    description="Drafts and translations, the approval queue, delivery to our channels.",
)
