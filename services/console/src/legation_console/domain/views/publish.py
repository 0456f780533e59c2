"""Publish pages: posts, a post with its language variants side by side and its deliveries,
the approval queue, and the new-post form. No I/O."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from legation.events.v1 import publish_pb2
from legation_console.domain import access
from legation_console.domain.formatting import count, safe_url, timestamp, when
from legation_console.domain.people import Person

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


def approvals_page(posts: Sequence[publish_pb2.PostState], person: Person) -> ApprovalsPage:
    """The posts waiting for an approval step, oldest change first (waiting longest)."""
    waiting = [p for p in posts if p.status == publish_pb2.POST_STATUS_IN_REVIEW]
    waiting.sort(key=lambda p: (p.updated_at.seconds, p.post_id))
    return ApprovalsPage(
        rows=tuple(_row(p) for p in waiting),
        summary=f"{count(len(waiting), 'post')} waiting for approval",
        can_approve=access.may(person.roles, access.APPROVE_POST),
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


@dataclass(frozen=True)
class DeliveryView:
    channel: str
    language: str
    status: str
    attempts: str
    url: str | None
    reason: str
    published: str


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
            )
        )
    deliveries = tuple(
        DeliveryView(
            channel=d.channel,
            language=d.language,
            status=DELIVERY_STATUS.get(d.status, "Unknown"),
            attempts=count(d.attempts, "attempt"),
            url=safe_url(d.url),
            reason=d.reason,
            published=when(timestamp(d.published_at)),
        )
        for d in post.deliveries
    )
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
        live=post.status in (publish_pb2.POST_STATUS_SCHEDULED, publish_pb2.POST_STATUS_FAILED)
        or any(
            d.status in (publish_pb2.DELIVERY_STATUS_PENDING, publish_pb2.DELIVERY_STATUS_SENDING)
            for d in post.deliveries
        ),
    )


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


_FIELD = re.compile(r"^(?:content\.(?P<field>title|body)|(?P<campaign>campaign_id))")


def with_service_error(form: PostForm, detail: str, translation: bool) -> PostForm:
    """The publisher's INVALID_ARGUMENT detail (``content.title is required``) on its field."""
    matched = _FIELD.match(detail)
    if matched is not None and matched.group("campaign"):
        field = "campaign"
    else:
        field = matched.group("field") if matched and matched.group("field") else "title"
        if translation:
            field = f"translation_{field}"
    message = detail[:1].upper() + detail[1:]
    return PostForm(**{**form.__dict__, "errors": ((field, message),)})
