"""Listen pages: the tracked issues, the query editor's check and preview, the sources,
the mentions with their filters and the alerts. No I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlencode

from legation.evaluator.v1 import evaluator_service_pb2 as evaluator_pb
from legation.events.v1 import listen_pb2
from legation.listener.v1 import listener_service_pb2 as listener_pb
from legation_console.domain import access
from legation_console.domain.formatting import (
    count,
    duration,
    excerpt,
    safe_url,
    timestamp,
    until,
    when,
)
from legation_console.domain.people import Person


@dataclass(frozen=True)
class IssueRow:
    issue_id: str
    name: str
    matching: str  # the query, or the keywords
    matching_kind: str  # "query" or "keywords"
    sources: str  # "2 sources"
    campaigns: str
    state: str  # "Active" or "Paused"


@dataclass(frozen=True)
class IssuesPage:
    rows: tuple[IssueRow, ...]
    summary: str
    can_track: bool


def issues_page(issues: Sequence[listen_pb2.TrackedIssue], person: Person) -> IssuesPage:
    """The tracked issues, by name."""
    rows = tuple(
        IssueRow(
            issue_id=issue.issue_id,
            name=issue.name or issue.issue_id,
            matching=issue.query or ", ".join(issue.keywords),
            matching_kind="query" if issue.query else "keywords",
            sources=count(len(issue.feeds), "source"),
            campaigns=", ".join(issue.campaign_ids) or "—",
            state="Active" if issue.active else "Paused",
        )
        for issue in sorted(issues, key=lambda i: (i.name or i.issue_id).casefold())
    )
    return IssuesPage(
        rows=rows,
        summary=count(len(rows), "tracked issue"),
        can_track=access.may(person.roles, access.TRACK_ISSUE),
    )


_POSITION = re.compile(r"^(?:query: )?(?P<message>.*?)(?: at position (?P<position>\d+))?$", re.S)


@dataclass(frozen=True)
class QueryProblem:
    """A malformed query: the parser's message and where, with the line to show under a
    caret."""

    message: str
    position: int | None
    line: str  # the query's line holding the position
    line_number: int  # 1-based
    column: int  # 0-based, within ``line``

    @property
    def caret(self) -> str:
        """Spaces then ``^`` under the column."""
        return " " * self.column + "^"


def query_problem(query: str, detail: str) -> QueryProblem:
    """The listener's ``INVALID_ARGUMENT`` detail (``query: expected ')' at position 18``)
    as a problem to show at its position."""
    matched = _POSITION.match(detail.strip())
    message = detail.strip()
    position: int | None = None
    if matched is not None:
        message = matched.group("message").strip() or message
        if matched.group("position") is not None:
            position = min(int(matched.group("position")), len(query))
    if position is None:
        return QueryProblem(message, None, "", 0, 0)
    before = query[:position]
    line_number = before.count("\n") + 1
    start = before.rfind("\n") + 1
    end = query.find("\n", position)
    line = query[start : end if end != -1 else len(query)]
    return QueryProblem(message, position, line, line_number, position - start)


@dataclass(frozen=True)
class PreviewRow:
    title: str
    text: str
    url: str | None
    author: str
    source: str
    language: str
    published: str
    matched_terms: str


@dataclass(frozen=True)
class QueryCheck:
    """What the editor shows under the query while typing."""

    query: str
    problem: QueryProblem | None
    rows: tuple[PreviewRow, ...]
    summary: str
    failed_feeds: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.problem is None and bool(self.query.strip())


def query_check(query: str, response: listener_pb.PreviewQueryResponse | None) -> QueryCheck:
    """A valid query's preview (its matches among the items the listener read recently)."""
    if not query.strip() or response is None:
        return QueryCheck(query, None, (), "Type a query to see what it matches.", ())
    rows = tuple(
        PreviewRow(
            title=match.title or "(no title)",
            text=excerpt(match.text),
            url=safe_url(match.url),
            author=match.author or "unknown author",
            source=match.source_url,
            language=match.language or "unknown",
            published=when(timestamp(match.published_at)),
            matched_terms=", ".join(match.matched_terms),
        )
        for match in response.matches
    )
    summary = (
        f"{count(response.total_matches, 'match', 'matches')} among "
        f"{count(response.items_examined, 'recent item')}"
    )
    if response.total_matches > len(rows):
        summary += f" (the newest {len(rows)} shown)"
    return QueryCheck(query, None, rows, summary, tuple(response.failed_feeds))


def query_invalid(query: str, detail: str) -> QueryCheck:
    """A malformed query: its problem, no preview."""
    return QueryCheck(query, query_problem(query, detail), (), "", ())


@dataclass(frozen=True)
class IssueForm:
    """The values and field errors of the "track an issue" form."""

    name: str = ""
    query: str = ""
    feeds: str = ""  # one per line
    campaigns: str = ""  # comma-separated
    errors: tuple[tuple[str, str], ...] = ()  # (field, message), in form order

    def error(self, field: str) -> str | None:
        """The error of ``field``, if any."""
        return next((message for name, message in self.errors if name == field), None)


_FIELD_OF = {"name": "name", "query": "query", "feeds": "feeds", "campaign_ids": "campaigns"}


def issue_form_errors(form: IssueForm) -> IssueForm:
    """``form`` with the errors a person can fix before anything is sent."""
    errors: list[tuple[str, str]] = []
    if not form.name.strip():
        errors.append(("name", "Enter a name for the issue"))
    if not form.query.strip():
        errors.append(("query", "Enter a query"))
    if not feed_list(form.feeds):
        errors.append(("feeds", "Enter at least one source, one per line"))
    return IssueForm(form.name, form.query, form.feeds, form.campaigns, tuple(errors))


def with_service_error(form: IssueForm, detail: str) -> IssueForm:
    """``form`` with the listener's ``INVALID_ARGUMENT`` detail on the field it names
    (``feeds[1]: ...`` → feeds; a query problem → query; else the name)."""
    head = detail.split(":", 1)[0].split("[", 1)[0].strip()
    field = _FIELD_OF.get(head, "name")
    message = detail.split(":", 1)[1].strip() if ":" in detail and head in _FIELD_OF else detail
    return IssueForm(
        form.name,
        form.query,
        form.feeds,
        form.campaigns,
        ((field, message[:1].upper() + message[1:]),),
    )


def feed_list(text: str) -> list[str]:
    """The sources of the form's textarea, one per line, blanks dropped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def campaign_list(text: str) -> list[str]:
    """The campaign ids of the form's field, comma- or space-separated."""
    return [part for part in re.split(r"[,\s]+", text) if part]


SOURCE_STATES = {
    "ok": ("Reading", "govuk-tag--green"),
    "failing": ("Failing", "govuk-tag--red"),
    "rate_limited": ("Asked to wait", "govuk-tag--orange"),
    "unread": ("Not read yet", "govuk-tag--grey"),
}


@dataclass(frozen=True)
class SourceRow:
    issue_id: str
    source: str
    kind: str
    state: str
    state_tag: str
    last_success: str
    last_error: str
    failures: str
    items: str
    malformed: str
    # While rate limited: "until 2026-12-02 10:20 UTC (in 5 min)"; else "".
    waiting: str = ""


@dataclass(frozen=True)
class SourcesPage:
    rows: tuple[SourceRow, ...]
    summary: str


def _waiting(source: listener_pb.SourceStatus, now: datetime) -> str:
    not_before = timestamp(source.not_before)
    if source.state != "rate_limited" or not_before is None:
        return ""
    return f"until {when(not_before)} ({until(not_before, now)})"


def sources_page(sources: Sequence[listener_pb.SourceStatus], now: datetime) -> SourcesPage:
    """Every source of the tracked issues, failing ones first; a rate-limited one says
    until when it waits."""
    order = {"failing": 0, "rate_limited": 1, "unread": 2, "ok": 3}
    ordered = sorted(sources, key=lambda s: (order.get(s.state, 4), s.issue_id, s.source))
    rows = tuple(
        SourceRow(
            issue_id=s.issue_id,
            source=s.source,
            kind=s.kind or "unknown",
            state=SOURCE_STATES.get(s.state, (s.state or "Unknown", "govuk-tag--grey"))[0],
            state_tag=SOURCE_STATES.get(s.state, ("", "govuk-tag--grey"))[1],
            last_success=when(timestamp(s.last_success_at)),
            last_error=s.last_error,
            failures=count(s.consecutive_failures, "failure") + " in a row",
            items=count(s.items_read, "item"),
            malformed=count(s.malformed_items, "malformed item"),
            waiting=_waiting(s, now),
        )
        for s in ordered
    )
    failing = sum(1 for s in sources if s.state == "failing")
    return SourcesPage(rows, f"{count(len(rows), 'source')}, {failing} failing")


# The labels the listener gives (its enrichment), as the filters' choices.
SENTIMENTS = (
    ("positive", "Positive"),
    ("negative", "Negative"),
    ("neutral", "Neutral"),
    ("unknown", "Unknown"),
)
STANCES = (
    ("favour", "In favour"),
    ("against", "Against"),
    ("neutral", "Neutral"),
    ("unknown", "Unknown"),
)
# The evaluator takes at most this many values of each list filter (SearchMentionsRequest,
# ListAlertsRequest).
MAX_VALUES = 20
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,4}$")
_SEPARATORS = re.compile(r"[\s,;]+")
# The SearchMentions request's fields, as the form's (the evaluator's errors name them).
_SEARCH_FIELDS = {
    "issue_ids": "issue",
    "issue_id": "issue",
    "languages": "language",
    "sources": "source",
    "sentiments": "sentiment",
    "stances": "stance",
    "min_influence": "min_influence",
}


def language_tag(text: str) -> str | None:
    """``text`` as a BCP 47 tag in its usual case (``ES-mx`` → ``es-MX``, ``zh_hant`` →
    ``zh-Hant``), the way the listener writes tags; None when it is not one."""
    if not _LANGUAGE_TAG.match(text):
        return None
    first, *rest = re.split(r"[-_]", text)
    parts = [first.lower()]
    for part in rest:
        if len(part) == 4 and part.isalpha():
            parts.append(part.title())  # a script
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            parts.append(part.upper())  # a region
        else:
            parts.append(part.lower())
    return "-".join(parts)


Params = Mapping[str, str] | Iterable[tuple[str, str]]


def _multi(params: Params) -> dict[str, list[str]]:
    """Every value of every key (a query string repeats a key per ticked box)."""
    pairs = params.items() if isinstance(params, Mapping) else params
    found: dict[str, list[str]] = {}
    for key, value in pairs:
        found.setdefault(key, []).append(value)
    return found


def _listed(values: Sequence[str]) -> list[str]:
    """The values of repeated fields and of text fields listing several (separated by
    commas or spaces), trimmed, each once, in order."""
    items = (item for value in values for item in _SEPARATORS.split(value[:2000]))
    return list(dict.fromkeys(item[:200] for item in items if item))


def issue_choices(params: Params) -> tuple[str, ...]:
    """The issues chosen: the ticked boxes (``issue``) then those typed (``issues``)."""
    values = _multi(params)
    return tuple(_listed([*values.get("issue", []), *values.get("issues", [])]))


@dataclass(frozen=True)
class IssueChoice:
    """A tracked issue as a box of the filters' issue group."""

    issue_id: str
    name: str
    checked: bool


def issue_boxes(
    tracked: Sequence[listen_pb2.TrackedIssue], chosen: Sequence[str]
) -> tuple[IssueChoice, ...]:
    """A box for each tracked issue, by name, ticked when chosen."""
    ordered = sorted(tracked, key=lambda i: ((i.name or i.issue_id).casefold(), i.issue_id))
    return tuple(
        IssueChoice(issue.issue_id, issue.name or issue.issue_id, issue.issue_id in chosen)
        for issue in ordered
    )


def other_issues(boxes: Sequence[IssueChoice], chosen: Sequence[str]) -> str:
    """The chosen issues that have no box (not tracked now), for the text field."""
    boxed = {box.issue_id for box in boxes}
    return ", ".join(issue for issue in chosen if issue not in boxed)


def _plural(name: str, values: Sequence[str]) -> str:
    return f"{name}{'s' if len(values) > 1 else ''} {', '.join(values)}"


@dataclass(frozen=True)
class MentionFilters:
    """The mentions page's GET form, as sent (nothing chosen = no filter), with what is
    wrong. The list filters take several values at once: issues, languages, sentiments
    and stances."""

    issues: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    source: str = ""
    sentiments: tuple[str, ...] = ()
    stances: tuple[str, ...] = ()
    min_influence: str = ""
    fold: bool = True
    page: str = ""
    errors: tuple[tuple[str, str], ...] = ()  # (field, message), in form order

    def error(self, field: str) -> str | None:
        """The error of ``field``, if any."""
        return next((message for name, message in self.errors if name == field), None)

    @property
    def language_text(self) -> str:
        """The languages as the text field shows them (``fr, es``)."""
        return ", ".join(self.languages)

    def query(self, page: str = "") -> str:
        """These filters as URL parameters (a list filter repeats its key; every field is
        there, so an unticked "fold" stays unticked), with ``page``'s token when given."""
        values = [("issue", issue) for issue in self.issues]
        values.append(("language", self.language_text))
        values.append(("source", self.source))
        values += [("sentiment", value) for value in self.sentiments]
        values += [("stance", value) for value in self.stances]
        values.append(("min_influence", self.min_influence))
        values.append(("fold", "on" if self.fold else "off"))
        if page:
            values.append(("page", page))
        return urlencode(values)

    @property
    def described(self) -> str:
        """The filters in force, in words (``languages es, fr; stance against``)."""
        shown = [
            _plural("issue", self.issues) if self.issues else "",
            _plural("language", self.languages) if self.languages else "",
            f"source {self.source}" if self.source else "",
            _plural("sentiment", self.sentiments) if self.sentiments else "",
            _plural("stance", self.stances) if self.stances else "",
            f"influence at least {self.min_influence}" if self.min_influence else "",
        ]
        return "; ".join(part for part in shown if part)


def mention_filters(params: Params) -> MentionFilters:
    """The filters from the query string (values trimmed and cut to 200 characters; a
    list filter from its ticked boxes, or from a text listing several separated by commas
    or spaces), with an error on each field a person must fix (a language that is no tag,
    a label the listener never gives, an influence outside 0 to 1, more than
    :data:`MAX_VALUES` of a list). The first visit (no parameters) folds duplicates; after
    that the checkbox decides."""
    values = _multi(params)

    def one(name: str) -> str:
        return (values.get(name) or [""])[0].strip()[:200]

    errors: list[tuple[str, str]] = []
    issues = issue_choices(params)
    if len(issues) > MAX_VALUES:
        errors.append(("issue", f"Choose at most {MAX_VALUES} issues"))
    languages: list[str] = []
    for typed in _listed(values.get("language", [])):
        tag = language_tag(typed)
        if tag is None:
            errors.append(("language", "Enter language tags like es or es-MX, with commas"))
            languages = _listed(values.get("language", []))
            break
        languages.append(tag)
    languages = list(dict.fromkeys(languages))
    if len(languages) > MAX_VALUES:
        errors.append(("language", f"Enter at most {MAX_VALUES} languages"))
    sentiments = [v.lower() for v in _listed(values.get("sentiment", []))]
    if any(v not in dict(SENTIMENTS) for v in sentiments):
        errors.append(("sentiment", "Choose sentiments from the list"))
    stances = [v.lower() for v in _listed(values.get("stance", []))]
    if any(v not in dict(STANCES) for v in stances):
        errors.append(("stance", "Choose stances from the list"))
    influence = one("min_influence")
    if influence and _influence(influence) is None:
        errors.append(("min_influence", "Enter an influence from 0 to 1, like 0.5"))
    return MentionFilters(
        issues=tuple(issues),
        languages=tuple(languages),
        source=one("source"),
        sentiments=tuple(dict.fromkeys(sentiments)),
        stances=tuple(dict.fromkeys(stances)),
        min_influence=influence,
        fold=(values.get("fold") or ["on" if not values else ""])[0] == "on",
        page=(values.get("page") or [""])[0][:500],
        errors=tuple(errors),
    )


def _influence(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0.0 <= value <= 1.0 else None


_FILTER_LABELS = {
    "issue": "Issue",
    "language": "Language",
    "source": "Source",
    "sentiment": "Sentiment",
    "stance": "Stance",
    "min_influence": "Influence at least",
}
_SEARCH_ERROR = re.compile(r"^(?P<path>[a-z_]+)(?:\[\d+\])?(?::\s*|\s+)(?P<problem>.*)$", re.S)


def with_search_error(filters: MentionFilters, detail: str) -> MentionFilters:
    """``filters`` with the evaluator's ``INVALID_ARGUMENT`` detail (``issue_ids[0]: must
    be an id …``) on the form's field it names, in the form's words (``Issue must be an id
    …``); a detail naming none of them goes on the issue."""
    matched = _SEARCH_ERROR.match(detail.strip())
    field = _SEARCH_FIELDS.get(matched.group("path")) if matched else None
    if matched is None or field is None:
        message = detail.strip()
        return replace(filters, errors=(("issue", message[:1].upper() + message[1:]),))
    message = f"{_FILTER_LABELS[field]} {matched.group('problem')}"
    return replace(filters, errors=((field, message),))


def mentions_request(filters: MentionFilters) -> evaluator_pb.SearchMentionsRequest:
    """The SearchMentions request of the (checked) filters."""
    return evaluator_pb.SearchMentionsRequest(
        issue_ids=list(filters.issues),
        languages=list(filters.languages),
        sources=[filters.source] if filters.source else [],
        sentiments=list(filters.sentiments),
        stances=list(filters.stances),
        min_influence=_influence(filters.min_influence) or 0.0,
        fold_duplicates=filters.fold,
        page_size=50,
        page_token=filters.page,
    )


@dataclass(frozen=True)
class MentionRow:
    mention_id: str
    issue_id: str
    title: str
    text: str
    author: str
    source: str  # "rss · https://news.example.org/feed.rss"
    language: str
    sentiment: str
    stance: str
    influence: str  # "0.80 of 1"
    audience: str  # "12,000 people reached", or "" when unknown
    published: str
    url: str | None
    copies: str  # "2 copies" folded into this one, or ""


@dataclass(frozen=True)
class MentionsPage:
    filters: MentionFilters
    rows: list[MentionRow]
    summary: str
    next_page: str
    sentiments: tuple[tuple[str, str], ...] = SENTIMENTS
    stances: tuple[tuple[str, str], ...] = STANCES

    @property
    def live(self) -> bool:
        """The first page of valid filters follows new mentions; older pages stay put."""
        return not self.filters.page and not self.filters.errors


def _label(label: listen_pb2.Label) -> str:
    return label.value or "unknown"


def mentions_page(
    filters: MentionFilters, response: evaluator_pb.SearchMentionsResponse | None
) -> MentionsPage:
    """The mentions page: one row a mention, labels in words, the next page's token
    (``response`` None: the filters have errors, nothing was searched)."""
    if response is None:
        return MentionsPage(filters, [], "Fix the filters to see mentions.", "")
    rows = [
        MentionRow(
            mention_id=hit.mention.mention_id,
            issue_id=hit.issue_id,
            title=hit.mention.title,
            text=excerpt(hit.mention.text),
            author=hit.mention.author or "unknown author",
            source=" · ".join(p for p in (hit.mention.source, hit.mention.source_url) if p),
            language=hit.mention.language or "und",
            sentiment=_label(hit.mention.sentiment),
            stance=_label(hit.mention.stance),
            influence=f"{hit.mention.influence:.2f} of 1",
            audience=(
                f"{count(hit.mention.reach, 'person', 'people')} reached"
                if hit.mention.reach > 0
                else ""
            ),
            published=when(timestamp(hit.mention.published_at)),
            url=safe_url(hit.mention.url),
            copies=count(hit.copies, "copy", "copies") if hit.copies else "",
        )
        for hit in response.mentions
    ]
    summary = count(response.total, "mention")
    if filters.described:
        summary += f", filtered by {filters.described}"
    if filters.fold:
        summary += " (copies folded into their first)"
    return MentionsPage(
        filters=filters,
        rows=rows,
        summary=summary,
        next_page=response.next_page_token,
    )


@dataclass(frozen=True)
class AlertRow:
    alert_id: str
    issue_id: str
    window: str  # "2026-12-02 05:00 UTC, 1 h"
    count: str  # "12 mentions"
    usual: str  # "usually 3.1 mentions an hour (± 1.4) over 7 days"
    threshold: str  # "alert above 7.2 mentions"
    top_terms: str
    top_sources: str
    sentiment: str


@dataclass(frozen=True)
class AlertsPage:
    issues: tuple[str, ...]
    rows: list[AlertRow]
    summary: str
    # The refusal of the issue filter, in the form's words; "" when none.
    error: str = ""

    @property
    def live(self) -> bool:
        return not self.error

    def query(self) -> str:
        """The issue filter as URL parameters (the live fragment's)."""
        return urlencode([("issue", issue) for issue in self.issues])


def alerts_refused(issues: Sequence[str], detail: str) -> AlertsPage:
    """The alerts page when the issues were refused (more than :data:`MAX_VALUES`, or the
    evaluator's ``issue_ids[1]: must be an id …`` → ``Issue must be an id …``): no rows,
    the message on the issue field."""
    matched = _SEARCH_ERROR.match(detail.strip())
    message = f"Issue {matched.group('problem')}" if matched else detail.strip()
    return AlertsPage(tuple(issues), [], "Fix the issues to see their alerts.", message)


def alert_issues(params: Params) -> tuple[tuple[str, ...], str]:
    """The alerts page's issues (ticked, then typed) and what is wrong with them."""
    issues = issue_choices(params)
    if len(issues) > MAX_VALUES:
        return issues, f"Choose at most {MAX_VALUES} issues"
    return issues, ""


def _counts(counts: Sequence[listen_pb2.Alert.Count]) -> str:
    return ", ".join(f"{c.value} ({count(c.count, 'mention')})" for c in counts)


def alerts_page(issues: Sequence[str], alerts: Sequence[listen_pb2.Alert]) -> AlertsPage:
    """The alerts page: newest first as the service gave them, every number with its
    unit and the window's length as a duration."""
    rows = []
    for alert in alerts:
        start, end = timestamp(alert.window_start), timestamp(alert.window_end)
        window = when(start)
        if start is not None and end is not None and end > start:
            window += f", {duration((end - start).total_seconds())}"
        usual = f"usually {count(round(alert.baseline_mean, 1), 'mention')} an hour"
        if alert.baseline_stddev:
            usual += f" (± {alert.baseline_stddev:,.1f})"
        if alert.baseline_hours:
            usual += f" over {duration(alert.baseline_hours * 3600)}"
        rows.append(
            AlertRow(
                alert_id=alert.alert_id,
                issue_id=alert.issue_id,
                window=window,
                count=count(alert.count, "mention"),
                usual=usual,
                threshold=f"alert above {count(round(alert.threshold, 1), 'mention')}",
                top_terms=_counts(alert.top_terms),
                top_sources=_counts(alert.top_sources),
                sentiment=_counts(alert.sentiment),
            )
        )
    summary = count(len(rows), "alert")
    if issues:
        summary += f" for {_plural('issue', issues)}"
    return AlertsPage(issues=tuple(issues), rows=rows, summary=summary)
