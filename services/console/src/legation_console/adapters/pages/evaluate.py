"""Evaluate: the campaigns and a campaign's scorecard, live from the evaluator's stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from legation_console.adapters.live import streamed_fragments
from legation_console.adapters.rendering import (
    Section,
    console,
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
    found = await services(request).evaluator.list_campaigns(person_of(request))
    return render(request, "evaluate/campaigns.html", {"page": views.campaigns_page(found)})


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
    Route("/evaluate/campaigns/{campaign_id}", scorecard, name="evaluate-scorecard"),
    Route("/evaluate/campaigns/{campaign_id}/live", scorecard_live, name="evaluate-live"),
]
SECTION: Section | None = Section(
    title="Evaluate",
    path="/evaluate/campaigns",
    action=access.LIST_CAMPAIGNS,
    description="Campaigns and their live scorecards against their objectives.",
)
