"""Evaluate: the campaigns and a campaign's scorecard, live from the evaluator's stream;
editing, reports drawn with their progress shown, feedback and after-action reviews."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation_console.adapters.live import finished_fragments, streamed_fragments
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
from legation_console.adapters.services import ServiceError
from legation_console.domain import access
from legation_console.domain.views import evaluate as views


async def campaigns(request: Request) -> Response:
    """``GET /evaluate/campaigns``."""
    person = person_of(request)
    found = await services(request).evaluator.list_campaigns(person)
    context = {
        "page": views.campaigns_page(found),
        "can_create": access.may(person.roles, access.CREATE_CAMPAIGN),
    }
    return render(request, "evaluate/campaigns.html", context)


async def _form_page(request: Request, form: views.CampaignForm, status_code: int) -> Response:
    metrics = await services(request).evaluator.list_metrics(person_of(request))
    context = {
        "form": form,
        "metrics": [(m.name, f"{m.name.replace('_', ' ')} ({m.unit})") for m in metrics],
        "comparisons": [(key, label) for key, (label, _) in views.COMPARISONS.items()],
    }
    return render(request, "evaluate/new_campaign.html", context, status_code=status_code)


async def new_campaign(request: Request) -> Response:
    """``GET /evaluate/campaigns/new``: a campaign and its first objective."""
    return await _form_page(request, views.CampaignForm(), 200)


async def create_campaign(request: Request) -> Response:
    """``POST /evaluate/campaigns``: the campaign, or the form with the field the form or
    the evaluator found wrong."""
    data = await form_of(request)
    values = {name: value for name, value in data.items() if isinstance(value, str)}
    form = views.campaign_form_errors(views.campaign_form(values))
    if not form.errors:
        try:
            created = await services(request).evaluator.create_campaign(
                person_of(request), views.campaign_of(form)
            )
        except ServiceError as error:
            if not error.invalid:
                raise
            form = views.with_campaign_error(form, error.detail)
        else:
            flash(request, f"“{created.name}” is measured from now on.")
            return RedirectResponse(
                request.url_for("evaluate-scorecard", campaign_id=created.campaign_id),
                status_code=303,
            )
    return await _form_page(request, form, 400)


async def scorecard(request: Request) -> Response:
    """``GET /evaluate/campaigns/{campaign_id}``: the scorecard, kept up to date."""
    person = person_of(request)
    evaluator = services(request).evaluator
    found = await evaluator.get_scorecard(person, request.path_params["campaign_id"])
    units = views.units_of(await evaluator.list_metrics(person))
    context = {
        "page": views.scorecard_page(found, units),
        "can_edit": access.may(person.roles, access.CREATE_CAMPAIGN),
        "can_report": access.may(person.roles, access.GET_REPORT),
        "can_review": access.may(person.roles, access.REVIEW_CAMPAIGN),
        "can_list_reviews": access.may(person.roles, access.LIST_REVIEWS),
    }
    return render(request, "evaluate/scorecard.html", context)


async def scorecard_live(request: Request) -> Response:
    """``GET /evaluate/campaigns/{campaign_id}/live``: the evaluator's
    ``WatchCampaignScorecard`` stream as HTML fragments."""
    person = person_of(request)
    evaluator = services(request).evaluator
    interval = console(request).live_interval_seconds

    async def fragments() -> AsyncIterator[str]:
        units = views.units_of(await evaluator.list_metrics(person))
        updates = evaluator.watch_scorecard(person, request.path_params["campaign_id"], interval)
        async for update in updates:
            page = views.scorecard_page(update, units)
            yield render_fragment(request, "evaluate/_scorecard.html", {"page": page})

    def failed(error: ServiceError) -> str:
        return render_fragment(request, "engage/_live_error.html", {"service": error.service})

    return streamed_fragments(request, "scorecard", fragments(), failed)


def _form_values(data: object) -> dict[str, str]:
    items = data.items() if hasattr(data, "items") else []
    return {name: value for name, value in items if isinstance(value, str)}


async def _edit_page(request: Request, form: views.EditForm, status_code: int) -> Response:
    metrics = await services(request).evaluator.list_metrics(person_of(request))
    context = {
        "form": form,
        "metrics": [(m.name, f"{m.name.replace('_', ' ')} ({m.unit})") for m in metrics],
        "comparisons": [(key, label) for key, (label, _) in views.COMPARISONS.items()],
    }
    return render(request, "evaluate/edit_campaign.html", context, status_code=status_code)


async def edit_campaign(request: Request) -> Response:
    """``GET /evaluate/campaigns/{campaign_id}/edit``: the campaign and all its objectives."""
    found = await services(request).evaluator.get_campaign(
        person_of(request), request.path_params["campaign_id"]
    )
    return await _edit_page(request, views.edit_form_of(found), 200)


async def save_campaign(request: Request) -> Response:
    """``POST /evaluate/campaigns/{campaign_id}/edit``: replaces the campaign, or shows the
    form with the field the form or the evaluator found wrong."""
    person = person_of(request)
    evaluator = services(request).evaluator
    campaign_id = request.path_params["campaign_id"]
    form = views.edit_form_errors(
        views.edit_form(campaign_id, _form_values(await form_of(request)))
    )
    if not form.errors:
        original = await evaluator.get_campaign(person, campaign_id)
        try:
            saved = await evaluator.create_campaign(person, views.edited_campaign(original, form))
        except ServiceError as error:
            if not error.invalid:
                raise
            form = views.with_edit_error(form, error.detail)
        else:
            flash(request, f"“{saved.name}” is saved.")
            return RedirectResponse(
                request.url_for("evaluate-scorecard", campaign_id=campaign_id), status_code=303
            )
    return await _edit_page(request, form, 400)


async def reports(request: Request) -> Response:
    """``GET /evaluate/campaigns/{campaign_id}/reports``: the report to draw and download."""
    found = await services(request).evaluator.get_campaign(
        person_of(request), request.path_params["campaign_id"]
    )
    context = {"campaign_id": found.campaign_id, "name": found.name or found.campaign_id}
    return render(request, "evaluate/reports.html", context)


def _format_key(request: Request) -> str:
    format_key = str(request.path_params["format"])
    if format_key not in views.REPORT_FORMATS:
        raise HTTPException(404, "Reports come as html or pdf.")
    return format_key


async def report_start(request: Request) -> Response:
    """``GET /evaluate/campaigns/{campaign_id}/reports/{format}/start``: the fragment that
    follows the report's progress (htmx puts it in the page's status region)."""
    context = {
        "campaign_id": request.path_params["campaign_id"],
        "format_key": _format_key(request),
        "format_name": views.REPORT_FORMAT_NAMES[_format_key(request)],
    }
    return render(request, "evaluate/_report_watch.html", context)


async def report_progress(request: Request) -> Response:
    """``GET /evaluate/campaigns/{campaign_id}/report.{format}/progress``: the evaluator's
    ``BuildCampaignReport`` stream as fragments, step by step, then a ``done`` fragment
    with the download link of the report it drew (kept a few minutes for this person)."""
    person = person_of(request)
    format_key = _format_key(request)
    campaign_id = request.path_params["campaign_id"]
    updates = services(request).evaluator.build_report(
        person, campaign_id, views.REPORT_FORMATS[format_key]
    )
    names = {"format_name": views.REPORT_FORMAT_NAMES[format_key]}

    async def fragments() -> AsyncIterator[tuple[str, str]]:
        async for update in updates:
            if not update.HasField("report"):
                progress = views.report_progress(update)
                html = render_fragment(
                    request, "evaluate/_report_progress.html", {"progress": progress, **names}
                )
                yield "report", html
                continue
            made = update.report
            token = console(request).reports.put(
                person.username,
                campaign_id,
                format_key,
                views.report_download_name(made, format_key),
                made.content,
            )
            link = request.url_for("evaluate-report", campaign_id=campaign_id, format=format_key)
            context = {
                "href": link.path + (f"?ready={token}" if token else ""),
                "size": views.size_of(len(made.content)),
                "format_key": format_key,
                **names,
            }
            yield "done", render_fragment(request, "evaluate/_report_ready.html", context)
            return

    def failed(error: ServiceError) -> str:
        return render_fragment(request, "evaluate/_report_failed.html", {"detail": error.detail})

    return finished_fragments(request, fragments(), failed)


async def report(request: Request) -> Response:
    """``GET /evaluate/campaigns/{campaign_id}/report.{format}[?ready=<token>]``: the
    report as a download: the one drawn while its progress was shown (``ready``), or drawn
    now by the evaluator (``GetCampaignReport``)."""
    format_key = _format_key(request)
    person = person_of(request)
    campaign_id = request.path_params["campaign_id"]
    kept = console(request).reports.get(
        request.query_params.get("ready", ""), person.username, campaign_id, format_key
    )
    if kept is not None:
        name, content = kept.file_name, kept.content
    else:
        made = await services(request).evaluator.get_report(
            person, campaign_id, views.REPORT_FORMATS[format_key]
        )
        name, content = views.report_download_name(made, format_key), made.content
    media = "application/pdf" if format_key == "pdf" else "text/html; charset=utf-8"
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def _feedback_page(
    request: Request, form: views.FeedbackForm, status_code: int, sent: str = ""
) -> Response:
    person = person_of(request)
    evaluator = services(request).evaluator
    campaign_id = request.path_params["campaign_id"]
    card, listed = await asyncio.gather(
        evaluator.get_scorecard(person, campaign_id),
        evaluator.list_feedback(
            person, evaluator_pb.ListFeedbackRequest(campaign_id=campaign_id, page_size=50)
        ),
    )
    context = {
        "form": form,
        "campaign_id": campaign_id,
        "name": card.name or campaign_id,
        "summary": views.feedback_summary(card),
        "rows": views.feedback_rows(listed.feedback, {campaign_id: card.name}),
        "more": bool(listed.next_page_token),
        "roles": [(key, label) for key, (label, _) in views.FROM_ROLES.items()],
        "can_review": access.may(person.roles, access.REVIEW_CAMPAIGN),
    }
    return render(request, "evaluate/feedback.html", context, status_code=status_code)


async def feedback(request: Request) -> Response:
    """``GET /evaluate/campaigns/{campaign_id}/feedback``: what was said, and a form."""
    return await _feedback_page(request, views.FeedbackForm(), 200)


async def submit_feedback(request: Request) -> Response:
    """``POST /evaluate/campaigns/{campaign_id}/feedback``."""
    data = _form_values(await form_of(request))
    form = views.feedback_form(data)
    campaign_id = request.path_params["campaign_id"]
    if not form.errors:
        request_id = data.get("request_id") or uuid.uuid4().hex
        try:
            await services(request).evaluator.submit_feedback(
                person_of(request), views.feedback_request(campaign_id, form, request_id)
            )
        except ServiceError as error:
            if not error.invalid:
                raise
            form = views.with_feedback_error(form, error.detail)
        else:
            flash(request, "The feedback is recorded.")
            return RedirectResponse(
                request.url_for("evaluate-feedback", campaign_id=campaign_id), status_code=303
            )
    return await _feedback_page(request, form, 400)


async def review_form(request: Request) -> Response:
    """``GET /evaluate/campaigns/{campaign_id}/review``: the team's lessons."""
    context = {
        "campaign_id": request.path_params["campaign_id"],
        "kinds": [(key, label) for key, (label, _) in views.LESSON_KINDS.items()],
        "values": {},
        "error": "",
    }
    return render(request, "evaluate/review_form.html", context)


async def create_review(request: Request) -> Response:
    """``POST /evaluate/campaigns/{campaign_id}/review``: the after-action review, shown."""
    person = person_of(request)
    evaluator = services(request).evaluator
    campaign_id = request.path_params["campaign_id"]
    data = _form_values(await form_of(request))
    review_request = evaluator_pb.ReviewCampaignRequest(
        campaign_id=campaign_id,
        request_id=data.get("request_id") or uuid.uuid4().hex,
        author=person.username,
        lessons=views.lessons_of(data, person.username),
    )
    try:
        review = await evaluator.review_campaign(person, review_request)
    except ServiceError as error:
        if error.denied or error.code.name not in ("FAILED_PRECONDITION", "INVALID_ARGUMENT"):
            raise
        context = {
            "campaign_id": campaign_id,
            "kinds": [(key, label) for key, (label, _) in views.LESSON_KINDS.items()],
            "values": data,
            "error": error.detail[:1].upper() + error.detail[1:],
        }
        return render(request, "evaluate/review_form.html", context, status_code=400)
    units = views.units_of(await evaluator.list_metrics(person))
    return render(request, "evaluate/review.html", {"page": views.review_page(review, units)})


async def _campaign_names(request: Request) -> dict[str, str]:
    found = await services(request).evaluator.list_campaigns(person_of(request))
    return {c.campaign_id: c.name or c.campaign_id for c in found}


async def feedback_list(request: Request) -> Response:
    """``GET /evaluate/feedback[?campaign=…&from=…&page=…]``: every campaign's feedback,
    newest first, a page at a time."""
    person = person_of(request)
    campaign_id = request.query_params.get("campaign", "").strip()
    from_role = request.query_params.get("from", "")
    listing = evaluator_pb.ListFeedbackRequest(
        campaign_id=campaign_id,
        from_role=views.from_role_of(from_role),
        page_size=50,
        page_token=request.query_params.get("page", ""),
    )
    names, found = await asyncio.gather(
        _campaign_names(request), services(request).evaluator.list_feedback(person, listing)
    )
    context = {
        "page": views.feedback_list_page(found, names, campaign_id, from_role),
        "campaigns": sorted(names.items(), key=lambda item: item[1].lower()),
        "roles": [(key, label) for key, (label, _) in views.FROM_ROLES.items()],
        "can_submit": access.may(person.roles, access.SUBMIT_FEEDBACK),
    }
    return render(request, "evaluate/feedback_list.html", context)


def _to_campaign(request: Request, route: str, back: str) -> Response:
    campaign_id = request.query_params.get("campaign", "").strip()
    if not campaign_id:
        return RedirectResponse(request.url_for(back), status_code=303)
    return RedirectResponse(request.url_for(route, campaign_id=campaign_id), status_code=303)


async def feedback_new(request: Request) -> Response:
    """``GET /evaluate/feedback/new?campaign=…``: the chosen campaign's feedback form."""
    return _to_campaign(request, "evaluate-feedback", "evaluate-feedback-list")


async def reviews_list(request: Request) -> Response:
    """``GET /evaluate/reviews[?campaign=…&page=…]``: after-action reviews, newest first."""
    person = person_of(request)
    campaign_id = request.query_params.get("campaign", "").strip()
    listing = evaluator_pb.ListAfterActionReviewsRequest(
        campaign_id=campaign_id, page_size=50, page_token=request.query_params.get("page", "")
    )
    names, found = await asyncio.gather(
        _campaign_names(request), services(request).evaluator.list_reviews(person, listing)
    )
    context = {
        "page": views.reviews_page(found, names, campaign_id),
        "campaigns": sorted(names.items(), key=lambda item: item[1].lower()),
        "can_review": access.may(person.roles, access.REVIEW_CAMPAIGN),
    }
    return render(request, "evaluate/reviews.html", context)


async def review_new(request: Request) -> Response:
    """``GET /evaluate/reviews/new?campaign=…``: the chosen campaign's review form."""
    return _to_campaign(request, "evaluate-review-form", "evaluate-reviews")


async def review_detail(request: Request) -> Response:
    """``GET /evaluate/reviews/{review_id}``: one after-action review."""
    person = person_of(request)
    evaluator = services(request).evaluator
    listing = evaluator_pb.ListAfterActionReviewsRequest(
        review_id=request.path_params["review_id"], page_size=1
    )
    found, metrics = await asyncio.gather(
        evaluator.list_reviews(person, listing), evaluator.list_metrics(person)
    )
    if not found.reviews:
        raise HTTPException(404, "no such review")
    page = views.review_page(found.reviews[0], views.units_of(metrics))
    return render(request, "evaluate/review.html", {"page": page})


ROUTES: Sequence[BaseRoute] = [
    Route("/evaluate/feedback", feedback_list, name="evaluate-feedback-list"),
    Route("/evaluate/feedback/new", feedback_new, name="evaluate-feedback-new"),
    Route("/evaluate/reviews", reviews_list, name="evaluate-reviews"),
    Route("/evaluate/reviews/new", review_new, name="evaluate-review-new"),
    Route("/evaluate/reviews/{review_id}", review_detail, name="evaluate-review-detail"),
    Route("/evaluate/campaigns", campaigns, name="evaluate-campaigns"),
    Route("/evaluate/campaigns", create_campaign, methods=["POST"], name="evaluate-create"),
    Route("/evaluate/campaigns/new", new_campaign, name="evaluate-new-campaign"),
    Route("/evaluate/campaigns/{campaign_id}", scorecard, name="evaluate-scorecard"),
    Route("/evaluate/campaigns/{campaign_id}/live", scorecard_live, name="evaluate-live"),
    Route("/evaluate/campaigns/{campaign_id}/edit", edit_campaign, name="evaluate-edit"),
    Route(
        "/evaluate/campaigns/{campaign_id}/edit",
        save_campaign,
        methods=["POST"],
        name="evaluate-save",
    ),
    Route("/evaluate/campaigns/{campaign_id}/reports", reports, name="evaluate-reports"),
    Route("/evaluate/campaigns/{campaign_id}/report.{format}", report, name="evaluate-report"),
    Route(
        "/evaluate/campaigns/{campaign_id}/report.{format}/progress",
        report_progress,
        name="evaluate-report-progress",
    ),
    Route(
        "/evaluate/campaigns/{campaign_id}/reports/{format}/start",
        report_start,
        name="evaluate-report-start",
    ),
    Route("/evaluate/campaigns/{campaign_id}/feedback", feedback, name="evaluate-feedback"),
    Route(
        "/evaluate/campaigns/{campaign_id}/feedback",
        submit_feedback,
        methods=["POST"],
        name="evaluate-submit-feedback",
    ),
    Route("/evaluate/campaigns/{campaign_id}/review", review_form, name="evaluate-review-form"),
    Route(
        "/evaluate/campaigns/{campaign_id}/review",
        create_review,
        methods=["POST"],
        name="evaluate-review",
    ),
]
SECTION: Section | None = Section(
    title="Evaluate",
    path="/evaluate/campaigns",
    action=access.LIST_CAMPAIGNS,
    description="Campaigns and their live scorecards against their objectives, reports, "
    "feedback and after-action reviews.",
)
