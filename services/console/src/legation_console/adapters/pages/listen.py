"""Listen: tracked issues, the query editor that checks and previews while typing, the
sources, the mentions (filtered, live) and the alerts (live)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from legation.listener.v1 import listener_service_pb2 as listener_pb
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
from legation_console.domain.views import listen as views


async def issues(request: Request) -> Response:
    """``GET /listen/issues``: every tracked issue."""
    person = person_of(request)
    found = await services(request).listener.list_issues(person)
    return render(request, "listen/issues.html", {"page": views.issues_page(found, person)})


async def sources(request: Request) -> Response:
    """``GET /listen/sources``: how every source of the tracked issues is doing."""
    found = await services(request).listener.list_sources(person_of(request))
    page = views.sources_page(found, datetime.now(UTC))
    return render(request, "listen/sources.html", {"page": page})


async def _issue_boxes(request: Request, chosen: Sequence[str]) -> tuple[views.IssueChoice, ...]:
    """The tracked issues as the filters' boxes (none when the listener does not answer:
    the issues' text field still takes their ids)."""
    try:
        tracked = await services(request).listener.list_issues(person_of(request))
    except ServiceError:
        return ()
    return views.issue_boxes(tracked, chosen)


def _issue_context(boxes: Sequence[views.IssueChoice], chosen: Sequence[str]) -> dict[str, object]:
    return {"issue_boxes": boxes, "other_issues": views.other_issues(boxes, chosen)}


async def _mentions(request: Request) -> views.MentionsPage:
    """The mentions the query string's filters select (none while a filter is wrong; the
    evaluator's own refusal goes on the field it names)."""
    filters = views.mention_filters(request.query_params.multi_items())
    if filters.errors:
        return views.mentions_page(filters, None)
    try:
        found = await services(request).evaluator.search_mentions(
            person_of(request), views.mentions_request(filters)
        )
    except ServiceError as error:
        if not error.invalid:
            raise
        return views.mentions_page(views.with_search_error(filters, error.detail), None)
    return views.mentions_page(filters, found)


async def mentions(request: Request) -> Response:
    """``GET /listen/mentions``: indexed mentions, narrowed by the GET form's filters; the
    first page follows new mentions by server-sent events."""
    page = await _mentions(request)
    status = 400 if page.filters.errors else 200
    boxes = await _issue_boxes(request, page.filters.issues)
    context = {"page": page, **_issue_context(boxes, page.filters.issues)}
    return render(request, "listen/mentions.html", context, status_code=status)


def _live_error(request: Request, error: ServiceError) -> str:
    return render_fragment(request, "engage/_live_error.html", {"service": error.service})


async def mentions_live(request: Request) -> Response:
    """``GET /listen/mentions/live?<filters>``: the mentions' first page whenever it
    changes (a new mention matching the filters, a copy folded into one)."""

    async def rows() -> str:
        page = await _mentions(request)
        return render_fragment(request, "listen/_mention_rows.html", {"page": page})

    return live_fragments(request, "mentions", rows, lambda e: _live_error(request, e))


async def _alerts(request: Request) -> views.AlertsPage:
    issues, problem = views.alert_issues(request.query_params.multi_items())
    if problem:
        return views.alerts_refused(issues, problem)
    try:
        found = await services(request).evaluator.list_alerts(person_of(request), issues)
    except ServiceError as error:
        if not error.invalid:
            raise
        return views.alerts_refused(issues, error.detail)
    return views.alerts_page(issues, found)


async def alerts(request: Request) -> Response:
    """``GET /listen/alerts[?issue=…&issue=…&issues=…]``: the newest surges of mentions
    of the issues chosen (or of all), followed live."""
    page = await _alerts(request)
    status = 400 if page.error else 200
    boxes = await _issue_boxes(request, page.issues)
    context = {"page": page, **_issue_context(boxes, page.issues)}
    return render(request, "listen/alerts.html", context, status_code=status)


async def alerts_live(request: Request) -> Response:
    """``GET /listen/alerts/live[?issue=…]``: the alerts whenever a new one is indexed."""

    async def rows() -> str:
        page = await _alerts(request)
        return render_fragment(request, "listen/_alert_rows.html", {"page": page})

    return live_fragments(request, "alerts", rows, lambda e: _live_error(request, e))


async def new_issue(request: Request) -> Response:
    """``GET /listen/issues/new``: the query editor."""
    return render(request, "listen/new_issue.html", _editor(request, views.IssueForm(), None))


async def track_issue(request: Request) -> Response:
    """``POST /listen/issues``: track the issue, or show the form again with its errors."""
    person = person_of(request)
    data = await form_of(request)
    form = views.issue_form_errors(
        views.IssueForm(
            name=str(data.get("name", "")),
            query=str(data.get("query", "")),
            feeds=str(data.get("feeds", "")),
            campaigns=str(data.get("campaigns", "")),
        )
    )
    if not form.errors:
        request_ = listener_pb.TrackIssueRequest(
            name=form.name.strip(),
            query=form.query,
            feeds=views.feed_list(form.feeds),
            campaign_ids=views.campaign_list(form.campaigns),
        )
        try:
            issue = await services(request).listener.track_issue(person, request_)
        except ServiceError as error:
            if not error.invalid:
                raise
            form = views.with_service_error(form, error.detail)
        else:
            flash(request, f"“{issue.name}” is tracked: its sources are read from now on.")
            return RedirectResponse(request.url_for("listen-issues"), status_code=303)
    check = await _check(request, form.query) if form.query.strip() else None
    return render(request, "listen/new_issue.html", _editor(request, form, check), status_code=400)


def _editor(
    request: Request, form: views.IssueForm, check: views.QueryCheck | None
) -> dict[str, object]:
    return {
        "form": form,
        "check": check,
        "can_track": access.may(person_of(request).roles, access.TRACK_ISSUE),
    }


async def query_check(request: Request) -> Response:
    """``POST /listen/query-check`` (htmx, while typing): the parser's problem at its
    position, or the query's matches among the items the listener read recently."""
    data = await form_of(request)
    feeds = views.feed_list(str(data.get("feeds", ""))) if data.get("read_feeds") else []
    check = await _check(request, str(data.get("query", "")), feeds)
    return render(request, "listen/_query_check.html", {"check": check})


async def _check(request: Request, query: str, feeds: list[str] | None = None) -> views.QueryCheck:
    """The query's problem, or its matches among recent items and ``feeds`` read now."""
    if not query.strip():
        return views.query_check(query, None)
    try:
        response = await services(request).listener.preview_query(person_of(request), query, feeds)
    except ServiceError as error:
        if not error.invalid:
            raise
        return views.query_invalid(query, error.detail)
    return views.query_check(query, response)


ROUTES: Sequence[BaseRoute] = [
    Route("/listen/issues", issues, name="listen-issues"),
    Route("/listen/issues/new", new_issue, name="listen-new-issue"),
    Route("/listen/sources", sources, name="listen-sources"),
    Route("/listen/mentions", mentions, name="listen-mentions"),
    Route("/listen/mentions/live", mentions_live, name="listen-mentions-live"),
    Route("/listen/alerts", alerts, name="listen-alerts"),
    Route("/listen/alerts/live", alerts_live, name="listen-alerts-live"),
    Route("/listen/issues", track_issue, methods=["POST"], name="listen-track-issue"),
    Route("/listen/query-check", query_check, methods=["POST"], name="listen-query-check"),
]
SECTION: Section | None = Section(
    title="Listen",
    path="/listen/issues",
    action=access.LIST_ISSUES,
    description="Tracked issues and their queries, sources, mentions and alerts.",
)
