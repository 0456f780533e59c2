"""Evaluate: the campaigns and a campaign's scorecard, live from the evaluator's stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from legation_console.adapters.live import streamed_fragments
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
    return render(request, "evaluate/scorecard.html", {"page": views.scorecard_page(found, units)})


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


ROUTES: Sequence[BaseRoute] = [
    Route("/evaluate/campaigns", campaigns, name="evaluate-campaigns"),
    Route("/evaluate/campaigns", create_campaign, methods=["POST"], name="evaluate-create"),
    Route("/evaluate/campaigns/new", new_campaign, name="evaluate-new-campaign"),
    Route("/evaluate/campaigns/{campaign_id}", scorecard, name="evaluate-scorecard"),
    Route("/evaluate/campaigns/{campaign_id}/live", scorecard_live, name="evaluate-live"),
]
SECTION: Section | None = Section(
    title="Evaluate",
    path="/evaluate/campaigns",
    action=access.LIST_CAMPAIGNS,
    description="Campaigns and their live scorecards against their objectives.",
)
