"""Publish pages: posts, a post with its language variants side by side and its deliveries,
the approval queue, and the new-post form. No I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from legation.events.v1 import publish_pb2
from legation_console.domain import access
from legation_console.domain.formatting import count, safe_url, timestamp, when
from legation_console.domain.people import Person
from legation_console.domain.recurrence import occurrences_between

STATUS = {
    publish_pb2.POST_STATUS_DRAFT: ("Draft", "govuk-tag--grey"),
    publish_pb2.POST_STATUS_IN_REVIEW: ("In review", "govuk-tag--blue"),
    publish_pb2.POST_STATUS_CHANGES_REQUESTED: ("Changes requested", "govuk-tag--orange"),
    publish_pb2.POST_STATUS_APPROVED: ("Approved", "govuk-tag--turquoise"),
    publish_pb2.POST_STATUS_SCHEDULED: ("Scheduled", "govuk-tag--purple"),
    publish_pb2.POST_STATUS_PUBLISHED: ("Published", "govuk-tag--green"),
    publish_pb2.POST_STATUS_FAILED: ("Failed", "govuk-tag--red"),
}
DELIVERY_STATUS = {
    publish_pb2.DELIVERY_STATUS_PENDING: "Pending",
    publish_pb2.DELIVERY_STATUS_SENDING: "Sending",
    publish_pb2.DELIVERY_STATUS_PUBLISHED: "Delivered",
    publish_pb2.DELIVERY_STATUS_FAILED: "Failed",
    publish_pb2.DELIVERY_STATUS_CANCELLED: "Cancelled",
    publish_pb2.DELIVERY_STATUS_NEEDS_CHECK: "Needs a check",
}
_EDITABLE = (publish_pb2.POST_STATUS_DRAFT, publish_pb2.POST_STATUS_CHANGES_REQUESTED)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _status(value: publish_pb2.PostStatus.ValueType) -> tuple[str, str]:
    return STATUS.get(value, ("Unknown", "govuk-tag--grey"))


def _title(post: publish_pb2.PostState) -> str:
    source = next((v for v in post.variants if not v.source_language), None)
    chosen = source or (post.variants[0] if post.variants else None)
    return (chosen.title if chosen else "") or post.post_id


@dataclass(frozen=True)
class PostRow:
    post_id: str
    title: str
    status: str
    status_tag: str
    languages: str
    channels: str
    campaign: str
    created_by: str
    updated: str


def _row(post: publish_pb2.PostState) -> PostRow:
    status, tag = _status(post.status)
    return PostRow(
        post_id=post.post_id,
        title=_title(post),
        status=status,
        status_tag=tag,
        languages=", ".join(v.language for v in post.variants),
        channels=", ".join(post.channels) or "—",
        campaign=post.campaign_id or "—",
        created_by=post.created_by,
        updated=when(timestamp(post.updated_at)),
    )


def _newest_first(posts: Sequence[publish_pb2.PostState]) -> list[publish_pb2.PostState]:
    return sorted(posts, key=lambda p: (-p.updated_at.seconds, p.post_id))


PER_PAGE = 50


@dataclass(frozen=True)
class PostsPage:
    rows: tuple[PostRow, ...]
    summary: str
    can_create: bool
    awaiting_approval: str
    page: int
    pages: int
    showing: str  # "posts 51 to 100"


def posts_page(posts: Sequence[publish_pb2.PostState], person: Person, page: int = 1) -> PostsPage:
    """The posts of the window, most recently changed first, :data:`PER_PAGE` at a time
    (``page`` from 1; past the last, the last)."""
    in_review = sum(1 for p in posts if p.status == publish_pb2.POST_STATUS_IN_REVIEW)
    pages = max(1, -(-len(posts) // PER_PAGE))
    page = min(max(page, 1), pages)
    first = (page - 1) * PER_PAGE
    shown = _newest_first(posts)[first : first + PER_PAGE]
    return PostsPage(
        rows=tuple(_row(p) for p in shown),
        summary=count(len(posts), "post"),
        can_create=access.may(person.roles, access.CREATE_POST),
        awaiting_approval=count(in_review, "post"),
        page=page,
        pages=pages,
        showing=f"posts {first + 1} to {first + len(shown)}" if shown else "no posts",
    )


@dataclass(frozen=True)
class ApprovalsPage:
    rows: tuple[PostRow, ...]
    summary: str
    can_approve: bool
    can_request_changes: bool = False


def approvals_page(posts: Sequence[publish_pb2.PostState], person: Person) -> ApprovalsPage:
    """The posts waiting for an approval step, oldest change first (waiting longest)."""
    waiting = [p for p in posts if p.status == publish_pb2.POST_STATUS_IN_REVIEW]
    waiting.sort(key=lambda p: (p.updated_at.seconds, p.post_id))
    return ApprovalsPage(
        rows=tuple(_row(p) for p in waiting),
        summary=f"{count(len(waiting), 'post')} waiting for approval",
        can_approve=access.may(person.roles, access.APPROVE_POST),
        can_request_changes=access.may(person.roles, access.REQUEST_CHANGES),
    )


@dataclass(frozen=True)
class VariantView:
    language: str
    translated_from: str
    title: str
    body: str
    status: str
    status_tag: str
    approvals: tuple[str, ...]
    media: tuple[MediaView, ...] = ()
    # Changes requested: who asked, when, and why (the approver's reason).
    changes_requested: CommentView | None = None


@dataclass(frozen=True)
class CommentView:
    user: str
    when: str
    languages: str  # "en, es", or "the whole post"
    text: str


@dataclass(frozen=True)
class MediaView:
    kind: str
    url: str | None  # None: not an http(s) link, shown as text only
    address: str
    alt_text: str  # "No description" when there is none


def media_views(refs: Sequence[publish_pb2.MediaRef]) -> tuple[MediaView, ...]:
    """A variant's media with their descriptions, the address a link only when safe."""
    return tuple(
        MediaView(
            kind=ref.kind or "media",
            url=safe_url(ref.url),
            address=ref.url,
            alt_text=ref.alt_text.strip() or "No description",
        )
        for ref in refs
    )


@dataclass(frozen=True)
class DeliveryView:
    channel: str
    language: str
    status: str
    attempts: str
    url: str | None
    reason: str
    published: str
    delivery_id: str = ""
    can_retry: bool = False
    can_cancel: bool = False
    can_confirm: bool = False


_RETRYABLE = (
    publish_pb2.DELIVERY_STATUS_FAILED,
    publish_pb2.DELIVERY_STATUS_NEEDS_CHECK,
    publish_pb2.DELIVERY_STATUS_CANCELLED,
)
_CANCELLABLE = (
    publish_pb2.DELIVERY_STATUS_PENDING,
    publish_pb2.DELIVERY_STATUS_FAILED,
    publish_pb2.DELIVERY_STATUS_NEEDS_CHECK,
)


def delivery_view(delivery: publish_pb2.Delivery, person: Person) -> DeliveryView:
    """A delivery and what the person may do about it: retry a failed, cancelled or
    needs-check one, cancel one that has not gone out, confirm a needs-check one found on
    its channel (each only with the role the publisher's policy asks for)."""
    return DeliveryView(
        channel=delivery.channel,
        language=delivery.language,
        status=DELIVERY_STATUS.get(delivery.status, "Unknown"),
        attempts=count(delivery.attempts, "attempt"),
        url=safe_url(delivery.url),
        reason=delivery.reason,
        published=when(timestamp(delivery.published_at)),
        delivery_id=delivery.delivery_id,
        can_retry=delivery.status in _RETRYABLE and access.may(person.roles, access.RETRY_DELIVERY),
        can_cancel=delivery.status in _CANCELLABLE
        and access.may(person.roles, access.CANCEL_DELIVERY),
        can_confirm=delivery.status == publish_pb2.DELIVERY_STATUS_NEEDS_CHECK
        and access.may(person.roles, access.CONFIRM_DELIVERY),
    )


@dataclass(frozen=True)
class PostPage:
    post_id: str
    title: str
    status: str
    status_tag: str
    campaign: str
    channels: str
    created_by: str
    variants: tuple[VariantView, ...]
    deliveries: tuple[DeliveryView, ...]
    can_submit: bool
    can_approve: bool
    can_schedule: bool
    live: bool  # deliveries may still change: the page follows them
    can_request_changes: bool = False
    comments: tuple[CommentView, ...] = ()  # newest first


def _comment_view(comment: publish_pb2.PostComment) -> CommentView:
    languages = ", ".join(part for part in comment.language.split(",") if part)
    return CommentView(
        user=comment.user,
        when=when(timestamp(comment.created_at)),
        languages=languages or "the whole post",
        text=comment.text,
    )


def _changes_reason(
    post: publish_pb2.PostState, variant: publish_pb2.LanguageVariant
) -> CommentView | None:
    """Why changes were asked of ``variant``: the latest comment on it (requesting changes
    records the approver's reason as a comment on the variants it sends back)."""
    if variant.status != publish_pb2.POST_STATUS_CHANGES_REQUESTED:
        return None
    on_it = [c for c in post.comments if variant.language in c.language.split(",")]
    return _comment_view(on_it[-1]) if on_it else None


# A variant changes may be asked of: in review, or approved and not yet scheduled.
_REVIEWABLE = (publish_pb2.POST_STATUS_IN_REVIEW, publish_pb2.POST_STATUS_APPROVED)


def post_page(post: publish_pb2.PostState, person: Person) -> PostPage:
    """A post: its variants side by side, its deliveries, what the person may do now."""
    status, tag = _status(post.status)
    variants = []
    for variant in post.variants:
        v_status, v_tag = _status(variant.status)
        variants.append(
            VariantView(
                language=variant.language,
                translated_from=variant.source_language,
                title=variant.title,
                body=variant.body,
                status=v_status,
                status_tag=v_tag,
                approvals=tuple(
                    f"{a.step}: {a.user}, {when(timestamp(a.approved_at))}"
                    for a in variant.approvals
                ),
                media=media_views(variant.media),
                changes_requested=_changes_reason(post, variant),
            )
        )
    deliveries = tuple(delivery_view(d, person) for d in post.deliveries)
    in_review = [v for v in post.variants if v.status == publish_pb2.POST_STATUS_IN_REVIEW]
    approved_by_person = all(any(a.user == person.username for a in v.approvals) for v in in_review)
    return PostPage(
        post_id=post.post_id,
        title=_title(post),
        status=status,
        status_tag=tag,
        campaign=post.campaign_id or "—",
        channels=", ".join(post.channels) or "—",
        created_by=post.created_by,
        variants=tuple(variants),
        deliveries=deliveries,
        can_submit=any(v.status in _EDITABLE for v in post.variants)
        and access.may(person.roles, access.SUBMIT_POST),
        can_approve=bool(in_review)
        and not approved_by_person
        and access.may(person.roles, access.APPROVE_POST),
        can_schedule=post.status == publish_pb2.POST_STATUS_APPROVED
        and access.may(person.roles, access.SCHEDULE_POST),
        can_request_changes=_may_request_changes(post, person),
        comments=tuple(_comment_view(c) for c in reversed(post.comments)),
        live=post.status in (publish_pb2.POST_STATUS_SCHEDULED, publish_pb2.POST_STATUS_FAILED)
        or any(
            d.status in (publish_pb2.DELIVERY_STATUS_PENDING, publish_pb2.DELIVERY_STATUS_SENDING)
            for d in post.deliveries
        ),
    )


def _may_request_changes(post: publish_pb2.PostState, person: Person) -> bool:
    return post.status in _REVIEWABLE and access.may(person.roles, access.REQUEST_CHANGES)


# The publisher's limit on a comment (ReviewRequest.comment).
MAX_REASON = 5000


@dataclass(frozen=True)
class ChangesForm:
    """The "request changes" form: the post it is about and the approver's reason."""

    post_id: str
    title: str
    reason: str = ""
    allowed: bool = True  # the person may request changes of this post now
    errors: tuple[tuple[str, str], ...] = ()

    def error(self, field: str) -> str | None:
        return next((message for name, message in self.errors if name == field), None)


def changes_form(post: publish_pb2.PostState, person: Person, reason: str = "") -> ChangesForm:
    """The form for ``post``, empty or with the reason as typed."""
    return ChangesForm(
        post_id=post.post_id,
        title=_title(post),
        reason=reason,
        allowed=_may_request_changes(post, person),
    )


def changes_form_errors(form: ChangesForm) -> ChangesForm:
    """``form`` with what must be fixed before the publisher is asked: a reason is
    required (the author needs to know what to change), within the publisher's limit."""
    reason = form.reason.strip()
    if not reason:
        error = "Enter what the author should change"
    elif len(reason) > MAX_REASON:
        error = f"The reason must be {MAX_REASON:,} characters or fewer"
    else:
        return form
    return ChangesForm(**{**form.__dict__, "errors": (("reason", error),)})


def with_changes_error(form: ChangesForm, detail: str) -> ChangesForm:
    """The publisher's INVALID_ARGUMENT detail (``comment is required: …``) on the reason."""
    problem = detail.strip().removeprefix("comment").strip()
    message = f"The reason {problem}" if problem else "The reason was refused"
    return ChangesForm(**{**form.__dict__, "errors": (("reason", message),)})


@dataclass(frozen=True)
class PostForm:
    """The new-post form: the source variant and, optionally, one translation."""

    campaign: str = ""
    language: str = "en"
    title: str = ""
    body: str = ""
    translation_language: str = ""
    translation_title: str = ""
    translation_body: str = ""
    media_url: str = ""
    media_alt: str = ""
    # The channels ticked (None: the publisher's defaults) and each channel's own text.
    channels: tuple[str, ...] | None = None
    channel_texts: tuple[tuple[str, str], ...] = ()
    errors: tuple[tuple[str, str], ...] = ()

    def error(self, field: str) -> str | None:
        return next((message for name, message in self.errors if name == field), None)

    @property
    def has_translation(self) -> bool:
        return bool(
            self.translation_language.strip()
            or self.translation_title.strip()
            or self.translation_body.strip()
        )


def post_form_errors(form: PostForm) -> PostForm:
    """``form`` with what the person must fix before anything is sent."""
    errors: list[tuple[str, str]] = []
    if not form.campaign.strip():
        errors.append(("campaign", "Enter the campaign the post is for"))
    if not _LANGUAGE.match(form.language.strip()):
        errors.append(("language", "Enter a language tag, like en or es-MX"))
    if not form.title.strip():
        errors.append(("title", "Enter a title"))
    if not form.body.strip():
        errors.append(("body", "Enter the text of the post"))
    if form.media_url.strip() and safe_url(form.media_url) is None:
        errors.append(("media_url", "Enter the image's address, starting with https://"))
    if form.media_url.strip() and not form.media_alt.strip():
        errors.append(("media_alt", "Describe the image for people who cannot see it"))
    if form.media_alt.strip() and not form.media_url.strip():
        errors.append(("media_url", "Enter the address of the image the text describes"))
    if form.has_translation:
        language = form.translation_language.strip()
        if not _LANGUAGE.match(language):
            errors.append(("translation_language", "Enter the translation's language tag"))
        elif language.lower() == form.language.strip().lower():
            errors.append(("translation_language", "A translation needs another language"))
        if not form.translation_title.strip():
            errors.append(("translation_title", "Enter the translation's title"))
        if not form.translation_body.strip():
            errors.append(("translation_body", "Enter the translation's text"))
    return PostForm(**{**form.__dict__, "errors": tuple(errors)})


_FIELD = re.compile(
    r"^(?:content\.(?P<field>title|body)|(?P<campaign>campaign_id)"
    r"|content\.media\[0\]\.(?P<media>url|alt_text))"
)


def with_service_error(form: PostForm, detail: str, translation: bool) -> PostForm:
    """The publisher's INVALID_ARGUMENT detail (``content.title is required``) on its field."""
    matched = _FIELD.match(detail)
    if matched is not None and matched.group("campaign"):
        field = "campaign"
    elif matched is not None and matched.group("media"):
        field = "media_alt" if matched.group("media") == "alt_text" else "media_url"
    else:
        field = matched.group("field") if matched and matched.group("field") else "title"
        if translation:
            field = f"translation_{field}"
    message = detail[:1].upper() + detail[1:]
    return PostForm(**{**form.__dict__, "errors": ((field, message),)})


# The calendar ---------------------------------------------------------------------------

CALENDAR_VIEWS = ("week", "month")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FILTER = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


@dataclass(frozen=True)
class CalendarQuery:
    """What the calendar shows: week or month, around which day, filtered how."""

    view: str
    day: date
    campaign: str = ""
    channel: str = ""
    language: str = ""

    def query(self, **changes: str) -> str:
        """This query as URL parameters, with ``changes`` (``day="2026-12-07"``)."""
        values = {
            "view": self.view,
            "day": self.day.isoformat(),
            "campaign": self.campaign,
            "channel": self.channel,
            "language": self.language,
            **changes,
        }
        return urlencode({k: v for k, v in values.items() if v})


def calendar_query(params: Mapping[str, str], today: date) -> CalendarQuery:
    """The calendar's query from the page's URL parameters; anything unusable falls back
    (week view, today, no filter) rather than failing."""
    view = params.get("view", "week")
    raw_day = params.get("day", "")
    try:
        day = date.fromisoformat(raw_day) if _DATE.match(raw_day) else today
    except ValueError:
        day = today

    def clean(name: str) -> str:
        value = params.get(name, "").strip()
        return value if _FILTER.match(value) else ""

    return CalendarQuery(
        view=view if view in CALENDAR_VIEWS else "week",
        day=day,
        campaign=clean("campaign"),
        channel=clean("channel"),
        language=clean("language"),
    )


def calendar_days(query: CalendarQuery) -> tuple[date, date]:
    """The first day shown and the day after the last: a week from Monday, or the whole
    weeks (Monday to Sunday) that hold the month."""
    if query.view == "month":
        first = query.day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        start = first - timedelta(days=first.weekday())
        last = following - timedelta(days=1)
        end = last + timedelta(days=7 - last.weekday())
        return start, end
    start = query.day - timedelta(days=query.day.weekday())
    return start, start + timedelta(days=7)


def calendar_window(query: CalendarQuery) -> tuple[datetime, datetime]:
    """The UTC range to ask the publisher for: the days shown, widened by a day each side
    because a post's day is its embassy's (UTC-12 to UTC+14)."""
    start, end = calendar_days(query)
    return (
        datetime.combine(start - timedelta(days=1), time(), UTC),
        datetime.combine(end + timedelta(days=1), time(), UTC),
    )


@dataclass(frozen=True)
class CalendarEntry:
    post_id: str
    title: str
    time: str  # "09:00 Europe/Madrid"
    status: str
    status_tag: str
    channels: str
    languages: str
    # A future occurrence of a recurring post, from its schedule's rule (not yet delivered).
    repeats: bool = False


@dataclass(frozen=True)
class CalendarDay:
    iso: str
    label: str  # "Mon 7 Dec"
    full: str  # "Monday 7 December 2026"
    entries: tuple[CalendarEntry, ...]
    in_period: bool  # False: a day of the month before or after, shown to fill the week
    today: bool


@dataclass(frozen=True)
class CalendarPage:
    query: CalendarQuery
    heading: str  # "Week of 7 December 2026", "December 2026"
    weeks: tuple[tuple[CalendarDay, ...], ...]
    summary: str
    previous: str  # URL parameters
    next: str
    current: str
    week_view: str
    month_view: str
    previous_label: str
    next_label: str
    # Some recurring post had more occurrences in the period than one post shows.
    capped: bool = False


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _occurrences(post: publish_pb2.PostState) -> set[datetime]:
    """When the post went (or goes) out as recorded: its deliveries' due times and its
    schedule's start."""
    found = {t for t in (timestamp(d.due_at) for d in post.deliveries) if t is not None}
    start = timestamp(post.schedule.start_at)
    if start is not None:
        found.add(start)
    return found


# A recurring post still has occurrences ahead in these states (a failed delivery does not
# stop the next ones).
_RECURRING_STATUSES = (publish_pb2.POST_STATUS_SCHEDULED, publish_pb2.POST_STATUS_FAILED)


def _upcoming(
    post: publish_pb2.PostState, start: datetime, end: datetime, now: datetime
) -> tuple[set[datetime], bool]:
    """A recurring post's occurrences from ``now`` on within ``[start, end)``, from its
    rule (and whether there were more than one post shows)."""
    if not post.schedule.rrule or post.status not in _RECURRING_STATUSES:
        return set(), False
    settled = timestamp(post.settled_until)
    found = occurrences_between(post.schedule, max(start, now), end, anchor=settled)
    return set(found.times), found.capped


def _shown(post: publish_pb2.PostState, query: CalendarQuery) -> bool:
    return (
        (not query.campaign or post.campaign_id == query.campaign)
        and (not query.channel or query.channel in post.channels)
        and (not query.language or any(v.language == query.language for v in post.variants))
    )


def calendar_page(
    posts: Sequence[publish_pb2.PostState],
    query: CalendarQuery,
    today: date,
    now: datetime | None = None,
) -> CalendarPage:
    """Scheduled and published posts on their day in their embassy's time zone (the
    schedule's), one entry per occurrence, in time order: those recorded (deliveries, the
    start) and, for a recurring post, its rule's occurrences from ``now`` on (default: the
    start of ``today``, UTC)."""
    start, end = calendar_days(query)
    moment_now = now or datetime.combine(today, time(), UTC)
    window = calendar_window(query)
    by_day: dict[date, list[tuple[datetime, CalendarEntry]]] = {}
    shown = 0
    capped = False
    for post in posts:
        if not _shown(post, query) or post.status not in _CALENDAR_STATUSES:
            continue
        zone = _zone(post.schedule.time_zone)
        status, tag = _status(post.status)
        recorded = _occurrences(post)
        upcoming, cut = _upcoming(post, *window, moment_now)
        capped = capped or cut
        for moment in sorted(recorded | upcoming):
            local = moment.astimezone(zone)
            if not start <= local.date() < end:
                continue
            shown += 1
            by_day.setdefault(local.date(), []).append(
                (
                    moment,
                    CalendarEntry(
                        post_id=post.post_id,
                        title=_title(post),
                        time=f"{local:%H:%M} {zone.key}",
                        status=status,
                        status_tag=tag,
                        channels=", ".join(post.channels) or "—",
                        languages=", ".join(v.language for v in post.variants),
                        repeats=moment not in recorded,
                    ),
                )
            )
    weeks = []
    day = start
    while day < end:
        week = []
        for _ in range(7):
            entries = sorted(by_day.get(day, []), key=lambda pair: (pair[0], pair[1].post_id))
            week.append(
                CalendarDay(
                    iso=day.isoformat(),
                    label=f"{day:%a} {day.day} {day:%b}",
                    full=f"{day:%A} {day.day} {day:%B %Y}",
                    entries=tuple(entry for _, entry in entries),
                    in_period=query.view == "week" or day.month == query.day.month,
                    today=day == today,
                )
            )
            day += timedelta(days=1)
        weeks.append(tuple(week))
    if query.view == "month":
        first = query.day.replace(day=1)
        before = (first - timedelta(days=1)).replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        heading = f"{first:%B %Y}"
        previous_label, next_label = f"{before:%B %Y}", f"{after:%B %Y}"
    else:
        before, after = start - timedelta(days=7), start + timedelta(days=7)
        heading = f"Week of {start.day} {start:%B %Y}"
        previous_label = f"Week of {before.day} {before:%B %Y}"
        next_label = f"Week of {after.day} {after:%B %Y}"
    return CalendarPage(
        query=query,
        heading=heading,
        weeks=tuple(weeks),
        summary=count(shown, "scheduled or published post"),
        previous=query.query(day=before.isoformat()),
        next=query.query(day=after.isoformat()),
        current=query.query(day=today.isoformat()),
        week_view=query.query(view="week"),
        month_view=query.query(view="month"),
        previous_label=previous_label,
        next_label=next_label,
        capped=capped,
    )


_CALENDAR_STATUSES = (
    publish_pb2.POST_STATUS_SCHEDULED,
    publish_pb2.POST_STATUS_PUBLISHED,
    publish_pb2.POST_STATUS_FAILED,
)
