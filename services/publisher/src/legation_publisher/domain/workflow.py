"""The approval workflow of a post, as plain functions over its state.

No I/O and no clock: every function takes the post's current state, the caller (a user and
roles) and ``now``, and returns the post's next state, whose ``transition`` says what
happened; the caller of these functions records that state (the service: on Kafka, before
answering). A function raises :class:`~legation_core.calls.AccessDenied` when the caller's
roles do not allow the change, :class:`Conflict` when the post is not in a state that allows
it, and :class:`~legation_publisher.domain.posts.InvalidPost` for bad input (the shared
vocabulary the gRPC runtime maps to status codes).

Language variants are reviewed one by one: draft → in_review → approved |
changes_requested; approval passes the configured steps in order (policy desk, then head of
communications), each needing its own role. Once every variant is approved, the post can be
scheduled; its deliveries then make it published or failed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TypeAlias
from urllib.parse import urlsplit

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2
from legation_channels import outbox
from legation_core import calls
from legation_core.auth import Caller
from legation_core.calls import AccessDenied
from legation_core.ids import stable_id
from legation_publisher.domain import schedule as sched
from legation_publisher.domain.content import ChannelProfile, tracked_links, validate_content
from legation_publisher.domain.delivery import from_outbox, to_outbox
from legation_publisher.domain.posts import DEFAULT_LANGUAGE, InvalidPost, post_id_for, xml_safe

S = publish_pb2
Status: TypeAlias = publish_pb2.PostStatus.ValueType
DRAFT = S.POST_STATUS_DRAFT
IN_REVIEW = S.POST_STATUS_IN_REVIEW
CHANGES_REQUESTED = S.POST_STATUS_CHANGES_REQUESTED
APPROVED = S.POST_STATUS_APPROVED
SCHEDULED = S.POST_STATUS_SCHEDULED
PUBLISHED = S.POST_STATUS_PUBLISHED
FAILED = S.POST_STATUS_FAILED
MAX_COMMENT_LENGTH = 5000


class Conflict(calls.Conflict):
    """The post is not in a state that allows this change (gRPC FAILED_PRECONDITION)."""


@dataclass(frozen=True)
class ApprovalStep:
    """One approval step and the role it needs."""

    name: str
    role: str


@dataclass(frozen=True)
class WorkflowPolicy:
    """Who may do what. Approval passes ``approval_steps`` in order."""

    draft_role: str = "editor"
    approval_steps: tuple[ApprovalStep, ...] = field(
        default=(
            ApprovalStep("policy-desk", "approver"),
            ApprovalStep("head-of-communications", "approver"),
        )
    )
    publish_role: str = "publisher"

    def roles(self) -> frozenset[str]:
        """Every role the workflow knows (any of them may comment)."""
        return frozenset(
            {self.draft_role, self.publish_role, *(step.role for step in self.approval_steps)}
        )


def parse_steps(text: str) -> tuple[ApprovalStep, ...]:
    """Approval steps from ``step:role,step:role`` (in order); raises ValueError."""
    steps: list[ApprovalStep] = []
    for item in text.split(","):
        name, sep, role = item.strip().partition(":")
        if not sep or not name.strip() or not role.strip():
            raise ValueError(f"{item.strip()!r} is not step:role (for example policy-desk:policy)")
        if any(step.name == name.strip() for step in steps):
            raise ValueError(f"step {name.strip()!r} appears twice")
        steps.append(ApprovalStep(name.strip(), role.strip()))
    if not steps:
        raise ValueError("names no step")
    return tuple(steps)


def _require(caller: Caller, role: str, action: str) -> None:
    if not caller.has_any([role]):
        who = caller.user or "the caller"
        raise AccessDenied(f"{action} needs the role {role!r}, which {who} lacks")


def derive_status(post: publish_pb2.PostState, now: datetime) -> Status:
    """The post's status from its variants' statuses and its deliveries."""
    if post.schedule.HasField("start_at"):
        statuses = {delivery.status for delivery in post.deliveries}
        if statuses & {sched.FAILED, sched.NEEDS_CHECK}:
            return FAILED
        if sched.finished(post.schedule, now, sched.settled_until(post)):
            expected = {planned.delivery_id for planned in sched.expected_deliveries(post, now)}
            done = {
                delivery.delivery_id
                for delivery in post.deliveries
                if delivery.status in (sched.PUBLISHED, sched.CANCELLED)
            }
            if expected <= done:
                return PUBLISHED
        return SCHEDULED
    variants = {variant.status for variant in post.variants}
    for status in (CHANGES_REQUESTED, DRAFT, IN_REVIEW):
        if status in variants:
            return status
    return APPROVED


def _next(
    post: publish_pb2.PostState,
    action: str,
    caller: str,
    now: datetime,
    *,
    languages: Sequence[str] = (),
    step: str = "",
    comment: str = "",
    delivery_id: str = "",
) -> publish_pb2.PostState:
    """``post`` after one change (bumped version, derived status, the transition)."""
    nxt = publish_pb2.PostState()
    nxt.CopyFrom(post)
    nxt.version = post.version + 1
    nxt.updated_at.FromDatetime(now.astimezone(UTC))
    nxt.status = derive_status(nxt, now)
    transition = publish_pb2.PostTransition(
        action=action,
        user=caller,
        languages=list(languages),
        from_status=post.status,
        to_status=nxt.status,
        step=step,
        comment=comment,
        delivery_id=delivery_id,
    )
    transition.at.FromDatetime(now.astimezone(UTC))
    nxt.transition.CopyFrom(transition)
    return nxt


def _copy(post: publish_pb2.PostState) -> publish_pb2.PostState:
    copy = publish_pb2.PostState()
    copy.CopyFrom(post)
    return copy


def _profiles(
    names: Sequence[str], channels: Mapping[str, ChannelProfile]
) -> dict[str, ChannelProfile]:
    chosen: dict[str, ChannelProfile] = {}
    for position, name in enumerate(names):
        if name not in channels:
            raise InvalidPost(
                f"channels[{position}]",
                f"{name!r} is not a configured channel ({', '.join(sorted(channels))})",
            )
        if name in chosen:
            raise InvalidPost(f"channels[{position}]", f"{name!r} appears twice")
        chosen[name] = channels[name]
    return chosen


def _variant(post: publish_pb2.PostState, language: str) -> publish_pb2.LanguageVariant:
    for variant in post.variants:
        if variant.language == language:
            return variant
    raise InvalidPost("language", f"the post has no {language!r} variant")


def _not_scheduled(post: publish_pb2.PostState, action: str) -> None:
    if post.schedule.HasField("start_at"):
        raise Conflict(f"cannot {action}: the post is already scheduled")


# ------------------------------------------------------------------------------- drafting


def create_post(
    request: publisher_service_pb2.CreatePostRequest,
    caller: Caller,
    policy: WorkflowPolicy,
    channels: Mapping[str, ChannelProfile],
    default_channels: Sequence[str],
    now: datetime,
) -> publish_pb2.PostState:
    """A new draft with its source variant; raises InvalidPost naming the field."""
    _require(caller, policy.draft_role, "drafting a post")
    if not request.request_id.strip():
        raise InvalidPost("request_id", "is required")
    campaign_id = request.campaign_id.strip()
    if not campaign_id:
        raise InvalidPost("campaign_id", "is required")
    chosen = _profiles(list(request.channels) or list(default_channels), channels)
    language = request.language.strip() or DEFAULT_LANGUAGE
    variant = validate_content(request.content, language, chosen)
    post = publish_pb2.PostState(
        post_id=post_id_for(request.request_id),
        request_id=request.request_id,
        campaign_id=campaign_id,
        issue_id=request.issue_id.strip(),
        channels=list(chosen),
        variants=[variant],
        created_by=caller.user,
    )
    post.created_at.FromDatetime(now.astimezone(UTC))
    return _next(post, "create", caller.user, now, languages=[language])


def update_variant(
    post: publish_pb2.PostState,
    language: str,
    content: publisher_service_pb2.VariantContent,
    caller: Caller,
    policy: WorkflowPolicy,
    channels: Mapping[str, ChannelProfile],
    now: datetime,
) -> publish_pb2.PostState:
    """Replaces a draft variant's content (its status and source link are kept)."""
    _require(caller, policy.draft_role, "editing a post")
    _not_scheduled(post, "edit it")
    old = _variant(post, language)
    if old.status not in (DRAFT, CHANGES_REQUESTED):
        raise Conflict(
            f"the {language!r} variant is {publish_pb2.PostStatus.Name(old.status)}: only a "
            "draft or a variant with changes requested can be edited"
        )
    fresh = validate_content(content, language, _profiles(post.channels, channels))
    fresh.source_language = old.source_language
    fresh.status = old.status
    nxt = _copy(post)
    for position, variant in enumerate(nxt.variants):
        if variant.language == language:
            nxt.variants[position].CopyFrom(fresh)
    return _next(nxt, "update_variant", caller.user, now, languages=[language])


def add_translation(
    post: publish_pb2.PostState,
    language: str,
    source_language: str,
    content: publisher_service_pb2.VariantContent,
    caller: Caller,
    policy: WorkflowPolicy,
    channels: Mapping[str, ChannelProfile],
    now: datetime,
) -> publish_pb2.PostState:
    """Adds a draft translation of ``source_language`` (default: the source variant)."""
    _require(caller, policy.draft_role, "translating a post")
    _not_scheduled(post, "add a translation")
    if any(variant.language == language for variant in post.variants):
        raise Conflict(f"the post already has a {language!r} variant: update it instead")
    source = source_language.strip() or post.variants[0].language
    if not any(variant.language == source for variant in post.variants):
        raise InvalidPost("source_language", f"the post has no {source!r} variant")
    variant = validate_content(content, language, _profiles(post.channels, channels))
    variant.source_language = source
    nxt = _copy(post)
    nxt.variants.append(variant)
    return _next(nxt, "add_translation", caller.user, now, languages=[language])


# --------------------------------------------------------------------------------- review


def _chosen(
    post: publish_pb2.PostState,
    languages: Sequence[str],
    statuses: Collection[Status],
    action: str,
) -> list[str]:
    if languages:
        for language in languages:
            variant = _variant(post, language)
            if variant.status not in statuses:
                raise Conflict(
                    f"cannot {action} the {language!r} variant: it is "
                    f"{publish_pb2.PostStatus.Name(variant.status)}"
                )
        return list(dict.fromkeys(languages))
    chosen = [variant.language for variant in post.variants if variant.status in statuses]
    if not chosen:
        names = ", ".join(publish_pb2.PostStatus.Name(s) for s in statuses)
        raise Conflict(f"cannot {action}: no variant is {names}")
    return chosen


def _check_comment(text: str, required: bool) -> str:
    text = xml_safe("comment", text.strip())
    if required and not text:
        raise InvalidPost("comment", "is required: say what should change")
    if len(text) > MAX_COMMENT_LENGTH:
        raise InvalidPost("comment", f"is longer than {MAX_COMMENT_LENGTH} characters")
    return text


def _with_comment(
    post: publish_pb2.PostState, user: str, language: str, text: str, now: datetime
) -> None:
    if not text:
        return
    comment = publish_pb2.PostComment(
        comment_id=stable_id("comment", post.post_id, str(post.version + 1)),
        user=user,
        language=language,
        text=text,
    )
    comment.created_at.FromDatetime(now.astimezone(UTC))
    post.comments.append(comment)


def _restart_review(
    post: publish_pb2.PostState,
    chosen: Sequence[str],
    status: Status,
    action: str,
    caller: Caller,
    text: str,
    now: datetime,
) -> publish_pb2.PostState:
    """Moves the chosen variants to ``status`` with their approvals cleared: a new round
    of review starts from the first step."""
    nxt = _copy(post)
    for variant in nxt.variants:
        if variant.language in chosen:
            variant.status = status
            del variant.approvals[:]
    _with_comment(nxt, caller.user, ",".join(chosen), text, now)
    return _next(nxt, action, caller.user, now, languages=chosen, comment=text)


def submit_for_review(
    post: publish_pb2.PostState,
    languages: Sequence[str],
    comment: str,
    caller: Caller,
    policy: WorkflowPolicy,
    now: datetime,
) -> publish_pb2.PostState:
    """Sends draft variants (or those with changes requested) to the first approval step."""
    _require(caller, policy.draft_role, "submitting a post for review")
    _not_scheduled(post, "submit it")
    chosen = _chosen(post, languages, (DRAFT, CHANGES_REQUESTED), "submit")
    text = _check_comment(comment, required=False)
    return _restart_review(post, chosen, IN_REVIEW, "submit", caller, text, now)


def approve(
    post: publish_pb2.PostState,
    languages: Sequence[str],
    comment: str,
    caller: Caller,
    policy: WorkflowPolicy,
    now: datetime,
) -> publish_pb2.PostState:
    """Passes the next approval step of each chosen variant in review; the caller needs the
    role of that step. A variant that passed the last step is approved."""
    chosen = _chosen(post, languages, (IN_REVIEW,), "approve")
    text = _check_comment(comment, required=False)
    nxt = _copy(post)
    steps: list[str] = []
    for variant in nxt.variants:
        if variant.language not in chosen:
            continue
        step = policy.approval_steps[len(variant.approvals)]
        _require(caller, step.role, f"approving step {step.name!r}")
        # Four eyes: each step is someone else's judgement.
        if any(done.user == caller.user for done in variant.approvals):
            raise AccessDenied(
                f"{caller.user} already approved an earlier step of the {variant.language!r} "
                f"variant; step {step.name!r} needs another approver"
            )
        approval = publish_pb2.Approval(step=step.name, user=caller.user)
        approval.approved_at.FromDatetime(now.astimezone(UTC))
        variant.approvals.append(approval)
        if len(variant.approvals) == len(policy.approval_steps):
            variant.status = APPROVED
        steps.append(step.name)
    _with_comment(nxt, caller.user, ",".join(chosen), text, now)
    return _next(
        nxt,
        "approve",
        caller.user,
        now,
        languages=chosen,
        step=",".join(dict.fromkeys(steps)),
        comment=text,
    )


def request_changes(
    post: publish_pb2.PostState,
    languages: Sequence[str],
    comment: str,
    caller: Caller,
    policy: WorkflowPolicy,
    now: datetime,
) -> publish_pb2.PostState:
    """Sends variants in review (or approved, not yet scheduled) back to their editors;
    the caller needs the role of some approval step, and must say why."""
    reviewer_roles = {step.role for step in policy.approval_steps}
    if not caller.has_any(reviewer_roles):
        raise AccessDenied(
            f"requesting changes needs one of the roles {', '.join(sorted(reviewer_roles))}"
        )
    _not_scheduled(post, "request changes")
    chosen = _chosen(post, languages, (IN_REVIEW, APPROVED), "request changes to")
    text = _check_comment(comment, required=True)
    return _restart_review(post, chosen, CHANGES_REQUESTED, "request_changes", caller, text, now)


def add_comment(
    post: publish_pb2.PostState,
    language: str,
    text: str,
    caller: Caller,
    policy: WorkflowPolicy,
    now: datetime,
) -> publish_pb2.PostState:
    """Adds a comment on the post or on one variant; anyone in the workflow may comment."""
    if not caller.has_any(policy.roles()):
        raise AccessDenied(f"commenting needs one of the roles {', '.join(sorted(policy.roles()))}")
    if language:
        _variant(post, language)
    body = xml_safe("text", text.strip())
    if not body:
        raise InvalidPost("text", "is required")
    if len(body) > MAX_COMMENT_LENGTH:
        raise InvalidPost("text", f"is longer than {MAX_COMMENT_LENGTH} characters")
    nxt = _copy(post)
    _with_comment(nxt, caller.user, language, body, now)
    return _next(
        nxt, "comment", caller.user, now, languages=[language] if language else [], comment=body
    )


# ------------------------------------------------------------------------------ scheduling


def schedule_post(
    post: publish_pb2.PostState,
    schedule: publish_pb2.PostSchedule,
    caller: Caller,
    policy: WorkflowPolicy,
    channels: Mapping[str, ChannelProfile],
    redirect_base: str,
    now: datetime,
) -> publish_pb2.PostState:
    """Schedules an approved post (``schedule`` from
    :func:`~legation_publisher.domain.schedule.parse_schedule`) and fixes its tracked
    links, so the redirect endpoint knows them before anything goes out."""
    _require(caller, policy.publish_role, "scheduling a post")
    _not_scheduled(post, "schedule it again")
    waiting = [variant.language for variant in post.variants if variant.status != APPROVED]
    if waiting:
        raise Conflict(f"every variant must be approved first; not yet: {', '.join(waiting)}")
    nxt = _copy(post)
    nxt.schedule.CopyFrom(schedule)
    profiles = _profiles(post.channels, channels)
    codes: set[str] = set()
    for variant in nxt.variants:
        for profile in profiles.values():
            for link in tracked_links(nxt, variant, profile, redirect_base):
                if link.code not in codes:
                    codes.add(link.code)
                    nxt.links.append(link)
    return _next(nxt, "schedule", caller.user, now, comment=schedule.local_time)


# ------------------------------------------------------------------------------ deliveries


def _delivery(post: publish_pb2.PostState, delivery_id: str) -> publish_pb2.Delivery | None:
    return next((d for d in post.deliveries if d.delivery_id == delivery_id), None)


def record_delivery(
    post: publish_pb2.PostState, record: publish_pb2.Delivery, now: datetime
) -> publish_pb2.PostState:
    """Records a delivery's new state (from the outbox), replacing any earlier record; the
    transition's action is ``delivery_<state>`` (sending, published, pending, failed…). A
    recurring post drops the records of its oldest settled occurrences
    (:func:`~legation_publisher.domain.schedule.prune_settled`)."""
    nxt = _copy(post)
    existing = _delivery(nxt, record.delivery_id)
    if existing is None:
        nxt.deliveries.append(record)
    else:
        existing.CopyFrom(record)
    sched.prune_settled(nxt)
    state = publish_pb2.DeliveryStatus.Name(record.status).removeprefix("DELIVERY_STATUS_")
    return _next(
        nxt,
        f"delivery_{state.lower()}",
        "scheduler",
        now,
        languages=[record.language],
        delivery_id=record.delivery_id,
        comment=record.reason,
    )


def retry_delivery(
    post: publish_pb2.PostState,
    delivery_id: str,
    caller: Caller,
    policy: WorkflowPolicy,
    now: datetime,
) -> publish_pb2.PostState:
    """A person asks a failed delivery (or one needing a check, found not to be on the
    channel) to go out again, with a fresh retry budget."""
    _require(caller, policy.publish_role, "retrying a delivery")
    record = _recorded(post, delivery_id)
    return _changed_by(
        post, record, lambda: outbox.retry(to_outbox(record), now), "retry", caller.user, now
    )


def cancel_delivery(
    post: publish_pb2.PostState,
    delivery_id: str,
    caller: Caller,
    policy: WorkflowPolicy,
    now: datetime,
) -> publish_pb2.PostState:
    """Stops a delivery that has not gone out: an upcoming one, one waiting to retry, a
    failed one or one needing a check. One being sent or published cannot be cancelled."""
    _require(caller, policy.publish_role, "cancelling a delivery")
    reason = f"cancelled by {caller.user}"
    record = _delivery(post, delivery_id)
    if record is None:
        # Not recorded yet: it may be one of the schedule's upcoming deliveries.
        horizon = datetime.max.replace(tzinfo=UTC)
        planned = next(
            (p for p in sched.expected_deliveries(post, horizon) if p.delivery_id == delivery_id),
            None,
        )
        if planned is None:
            raise InvalidPost("delivery_id", f"the post has no delivery {delivery_id}")
        record = from_outbox(
            outbox.new_delivery(delivery_id, planned.channel, now), planned.language, planned.due_at
        )
    current = to_outbox(record)

    def cancel() -> outbox.Delivery:
        if current.state == "pending":
            # Not begun: nothing can have reached the channel, so stopping it is always safe.
            return replace(current, state="cancelled", reason=reason, updated_at=now)
        return outbox.cancel(current, now, reason)

    return _changed_by(post, record, cancel, "cancel", caller.user, now)


def confirm_delivery(
    post: publish_pb2.PostState,
    delivery_id: str,
    channel_item_id: str,
    url: str,
    caller: Caller,
    policy: WorkflowPolicy,
    now: datetime,
) -> publish_pb2.PostState:
    """A person checked a needs-check delivery (interrupted on a channel that can neither
    look up nor deduplicate) and found it there: it is published, with the channel's own
    id and URL as the person found them. Retrying it instead would post it twice."""
    _require(caller, policy.publish_role, "confirming a delivery")
    record = _recorded(post, delivery_id)
    item = xml_safe("channel_item_id", channel_item_id.strip())
    if not item:
        raise InvalidPost("channel_item_id", "is required: the channel's id of what you found")
    link = url.strip()
    if link:
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidPost("url", f"must be an absolute http(s) URL (got {link!r})")
    return _changed_by(
        post,
        record,
        lambda: outbox.confirm_delivered(to_outbox(record), now, item, link),
        "confirm",
        caller.user,
        now,
    )


def _recorded(post: publish_pb2.PostState, delivery_id: str) -> publish_pb2.Delivery:
    """The recorded delivery a person's command names (one only planned is not)."""
    record = _delivery(post, delivery_id)
    if record is None:
        raise InvalidPost("delivery_id", f"the post has no recorded delivery {delivery_id}")
    return record


def _changed_by(
    post: publish_pb2.PostState,
    record: publish_pb2.Delivery,
    change: Callable[[], outbox.Delivery],
    action: str,
    user: str,
    now: datetime,
) -> publish_pb2.PostState:
    """``post`` with the delivery ``record`` as ``change()`` leaves it in the outbox, credited
    to ``user``'s ``action``; a change the outbox refuses is a Conflict."""
    try:
        changed = change()
    except outbox.InvalidTransition as error:
        raise Conflict(str(error)) from None
    nxt = record_delivery(post, from_outbox(changed, record.language, _due(record)), now)
    return _by(nxt, action, user)


def _due(record: publish_pb2.Delivery) -> datetime:
    return record.due_at.ToDatetime(tzinfo=UTC)


def _by(post: publish_pb2.PostState, action: str, user: str) -> publish_pb2.PostState:
    """``post`` with its last transition credited to a person's command."""
    post.transition.action = action
    post.transition.user = user
    return post
