"""Engage pages: the inbox by priority and SLA deadline, and a conversation's thread with
what the person may do on it. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from urllib.parse import urlencode

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.events.v1 import engage_pb2, listen_pb2
from legation_console.domain import access
from legation_console.domain.formatting import count, excerpt, safe_url, timestamp, until, when
from legation_console.domain.people import Person

_K = TypeVar("_K", bound=int)

PRIORITY_NAMES = {
    engage_pb2.PRIORITY_URGENT: "Urgent",
    engage_pb2.PRIORITY_HIGH: "High",
    engage_pb2.PRIORITY_NORMAL: "Normal",
    engage_pb2.PRIORITY_LOW: "Low",
}
# GOV.UK tag colours: the priority must not rest on colour alone (the word is the tag).
PRIORITY_TAGS = {
    engage_pb2.PRIORITY_URGENT: "govuk-tag--red",
    engage_pb2.PRIORITY_HIGH: "govuk-tag--orange",
    engage_pb2.PRIORITY_NORMAL: "govuk-tag--blue",
    engage_pb2.PRIORITY_LOW: "govuk-tag--grey",
}
STATUS_NAMES = {
    engage_pb2.CONVERSATION_STATUS_NEW: "New",
    engage_pb2.CONVERSATION_STATUS_ASSIGNED: "Assigned",
    engage_pb2.CONVERSATION_STATUS_WAITING: "Waiting",
    engage_pb2.CONVERSATION_STATUS_ANSWERED: "Answered",
    engage_pb2.CONVERSATION_STATUS_CLOSED: "Closed",
}
REPLY_STATUS_NAMES = {
    engage_pb2.REPLY_STATUS_AWAITING_APPROVAL: "Awaiting approval",
    engage_pb2.REPLY_STATUS_SENDING: "Sending",
    engage_pb2.REPLY_STATUS_DELIVERED: "Delivered",
    engage_pb2.REPLY_STATUS_RECORDED: "Recorded (no reply channel: give it on the platform)",
    engage_pb2.REPLY_STATUS_REJECTED: "Rejected",
    engage_pb2.REPLY_STATUS_FAILED: "Failed",
}
_OPEN = (
    engage_pb2.CONVERSATION_STATUS_NEW,
    engage_pb2.CONVERSATION_STATUS_ASSIGNED,
    engage_pb2.CONVERSATION_STATUS_WAITING,
)


def _title(state: engage_pb2.ConversationState) -> str:
    if not state.mentions:
        return state.conversation_id
    first = state.mentions[0]
    return first.title or excerpt(first.text, 120) or state.conversation_id


def _deadline(state: engage_pb2.ConversationState, now: datetime) -> tuple[str, bool]:
    """The first-response deadline in words, and whether it has passed unanswered."""
    if timestamp(state.first_response_at) is not None:
        return "answered", False
    if state.status == engage_pb2.CONVERSATION_STATUS_CLOSED:
        return "closed", False
    due = timestamp(state.sla_due_at)
    overdue = state.sla_breached or (due is not None and due < now)
    return until(due, now), overdue


@dataclass(frozen=True)
class InboxRow:
    conversation_id: str
    priority: str
    priority_tag: str
    status: str
    title: str
    author: str
    source: str
    deadline: str
    overdue: bool
    assignee: str
    mine: bool


@dataclass(frozen=True)
class InboxPage:
    rows: tuple[InboxRow, ...]
    summary: str
    mine: bool  # only the person's conversations
    filters: InboxFilters
    statuses: tuple[tuple[str, str], ...]  # (filter value, name)


def _sort_key(state: engage_pb2.ConversationState) -> tuple[int, float, str]:
    due = timestamp(state.sla_due_at)
    return (-int(state.priority), due.timestamp() if due else float("inf"), state.conversation_id)


def inbox_page(
    conversations: Sequence[engager_pb.Conversation],
    person: Person,
    mine: bool,
    now: datetime,
    filters: InboxFilters | None = None,
) -> InboxPage:
    """Open conversations first by priority, then by the nearest first-response deadline;
    narrowed to the filters' source and language (the engager applied the others)."""
    filters = filters or InboxFilters()
    conversations = filter_conversations(conversations, filters)
    states = sorted((c.detail for c in conversations), key=_sort_key)
    rows = []
    for state in states:
        deadline, overdue = _deadline(state, now)
        first = state.mentions[0] if state.mentions else listen_pb2.Mention()
        rows.append(
            InboxRow(
                conversation_id=state.conversation_id,
                priority=PRIORITY_NAMES.get(state.priority, "Unknown"),
                priority_tag=PRIORITY_TAGS.get(state.priority, "govuk-tag--grey"),
                status=STATUS_NAMES.get(state.status, "Unknown"),
                title=_title(state),
                author=first.author or "unknown author",
                source=first.source or "unknown source",
                deadline=deadline,
                overdue=overdue,
                assignee=state.assignee or "nobody",
                mine=state.assignee == person.username,
            )
        )
    open_count = sum(1 for state in states if state.status in _OPEN)
    summary = f"{count(len(rows), 'conversation')}, {open_count} open"
    if mine:
        summary += f", assigned to you ({person.username})"
    if filters.active:
        summary += f", filtered by {filter_summary(filters)}"
    statuses = tuple((key, STATUS_NAMES[value]) for key, value in STATUS_FILTERS.items())
    return InboxPage(tuple(rows), summary, mine, filters, statuses)


@dataclass(frozen=True)
class MentionView:
    author: str
    title: str
    text: str
    url: str | None
    published: str
    language: str
    sentiment: str


@dataclass(frozen=True)
class ReplyView:
    officer: str
    text: str
    status: str
    created: str
    detail: str


@dataclass(frozen=True)
class SavedReplyOption:
    saved_reply_id: str
    title: str
    languages: str


# The state changes a person makes by hand (the others follow from assigning and replying):
# (form value, button, the status it asks for, the statuses it applies to).
STATUS_ACTIONS: tuple[
    tuple[str, str, engage_pb2.ConversationStatus.ValueType, tuple[int, ...]], ...
] = (
    (
        "waiting",
        "Mark as waiting",
        engage_pb2.CONVERSATION_STATUS_WAITING,
        (
            engage_pb2.CONVERSATION_STATUS_NEW,
            engage_pb2.CONVERSATION_STATUS_ASSIGNED,
            engage_pb2.CONVERSATION_STATUS_ANSWERED,
        ),
    ),
    (
        "closed",
        "Close",
        engage_pb2.CONVERSATION_STATUS_CLOSED,
        (
            engage_pb2.CONVERSATION_STATUS_NEW,
            engage_pb2.CONVERSATION_STATUS_ASSIGNED,
            engage_pb2.CONVERSATION_STATUS_WAITING,
            engage_pb2.CONVERSATION_STATUS_ANSWERED,
        ),
    ),
    (
        "new",
        "Reopen",
        engage_pb2.CONVERSATION_STATUS_NEW,
        (engage_pb2.CONVERSATION_STATUS_CLOSED, engage_pb2.CONVERSATION_STATUS_WAITING),
    ),
)


def status_change(value: str) -> engage_pb2.ConversationStatus.ValueType | None:
    """The status a posted ``status`` form value asks for, None for anything else."""
    return next((status for key, _, status, _ in STATUS_ACTIONS if key == value), None)


@dataclass(frozen=True)
class ConversationPage:
    conversation_id: str
    title: str
    priority: str
    priority_tag: str
    status: str
    deadline: str
    overdue: bool
    assignee: str
    labels: str
    rules: str
    mentions: tuple[MentionView, ...]
    replies: tuple[ReplyView, ...]
    can_assign_to_me: bool
    can_reply: bool
    saved_replies: tuple[SavedReplyOption, ...]
    language: str
    status_actions: tuple[tuple[str, str], ...]  # (form value, button) the person may use
    label_list: tuple[str, ...]
    can_label: bool
    priority_key: str
    priorities: tuple[tuple[str, str], ...]  # (form value, name), when the person may override
    reply_languages: tuple[str, ...]
    pending: tuple[PendingReply, ...]  # replies awaiting approval
    can_assign: bool  # to a named colleague


def _sentiment(mention: listen_pb2.Mention) -> str:
    if not mention.sentiment.value:
        return "unknown"
    return f"{mention.sentiment.value} ({mention.sentiment.score:+.2f})"


def conversation_page(
    conversation: engager_pb.Conversation,
    saved_replies: Sequence[engager_pb.SavedReply],
    person: Person,
    now: datetime,
) -> ConversationPage:
    """The thread (mentions, then our replies) and the person's actions on it."""
    state = conversation.detail
    deadline, overdue = _deadline(state, now)
    is_open = state.status in _OPEN
    mentions = tuple(
        MentionView(
            author=m.author or "unknown author",
            title=m.title,
            text=m.text,
            url=safe_url(m.url),
            published=when(timestamp(m.published_at)),
            language=m.language or "unknown",
            sentiment=_sentiment(m),
        )
        for m in state.mentions
    )
    replies = tuple(
        ReplyView(
            officer=r.officer,
            text=r.text,
            status=REPLY_STATUS_NAMES.get(r.status, "Unknown"),
            created=when(timestamp(r.created_at)),
            detail=r.comment or r.delivery.reason,
        )
        for r in state.replies
    )
    return ConversationPage(
        conversation_id=state.conversation_id,
        title=_title(state),
        priority=PRIORITY_NAMES.get(state.priority, "Unknown"),
        priority_tag=PRIORITY_TAGS.get(state.priority, "govuk-tag--grey"),
        status=STATUS_NAMES.get(state.status, "Unknown"),
        deadline=deadline,
        overdue=overdue,
        assignee=state.assignee or "nobody",
        labels=", ".join(state.labels) or "none",
        rules=", ".join(state.rules) or "—",
        mentions=mentions,
        replies=replies,
        can_assign_to_me=is_open
        and state.assignee != person.username
        and access.may(person.roles, access.ASSIGN_CONVERSATION),
        can_reply=state.status != engage_pb2.CONVERSATION_STATUS_CLOSED
        and access.may(person.roles, access.REPLY_TO_CONVERSATION),
        saved_replies=tuple(
            SavedReplyOption(s.saved_reply_id, s.title, ", ".join(sorted(s.variants)))
            for s in saved_replies
        ),
        language=state.mentions[0].language if state.mentions else "",
        status_actions=tuple(
            (key, label) for key, label, _, applies in STATUS_ACTIONS if state.status in applies
        )
        if access.may(person.roles, access.SET_CONVERSATION_STATUS)
        else (),
        label_list=tuple(state.labels),
        can_label=access.may(person.roles, access.LABEL_CONVERSATION),
        priority_key=next((k for k, v in PRIORITY_CHOICES.items() if v == state.priority), ""),
        priorities=tuple((key, PRIORITY_NAMES[value]) for key, value in PRIORITY_CHOICES.items())
        if access.may(person.roles, access.PRIORITIZE_CONVERSATION)
        else (),
        reply_languages=reply_languages(saved_replies),
        pending=pending_replies([conversation], person),
        can_assign=is_open and access.may(person.roles, access.ASSIGN_CONVERSATION),
    )


@dataclass(frozen=True)
class ReplyForm:
    """What the person chose: a saved reply or their own text (one of them)."""

    saved_reply_id: str
    text: str
    error: str = ""
    language: str = ""


def reply_form(saved_reply_id: str, text: str, language: str = "") -> ReplyForm:
    """The reply form with its error, if any: exactly one of a saved reply or a text; the
    language picks the saved reply's variant (empty: the conversation's)."""
    saved, own, lang = saved_reply_id.strip(), text.strip(), language.strip().lower()
    if not saved and not own:
        return ReplyForm(saved, own, "Choose a saved reply or write a reply", lang)
    if saved and own:
        return ReplyForm(saved, own, "Choose a saved reply or write a reply, not both", lang)
    return ReplyForm(saved, own, "", lang)


# --- Inbox filters -------------------------------------------------------------------------

STATUS_FILTERS: dict[str, engage_pb2.ConversationStatus.ValueType] = {
    "new": engage_pb2.CONVERSATION_STATUS_NEW,
    "assigned": engage_pb2.CONVERSATION_STATUS_ASSIGNED,
    "waiting": engage_pb2.CONVERSATION_STATUS_WAITING,
    "answered": engage_pb2.CONVERSATION_STATUS_ANSWERED,
    "closed": engage_pb2.CONVERSATION_STATUS_CLOSED,
}


@dataclass(frozen=True)
class InboxFilters:
    """What the inbox is narrowed to: the engager filters state, label and assignee; the
    source and language are narrowed here (the API has no filter for them)."""

    status: str = ""
    source: str = ""
    language: str = ""
    label: str = ""
    assignee: str = ""

    @property
    def status_value(self) -> engage_pb2.ConversationStatus.ValueType:
        """The status the engager is asked for (unspecified: every state)."""
        return STATUS_FILTERS.get(self.status, engage_pb2.CONVERSATION_STATUS_UNSPECIFIED)

    @property
    def query(self) -> str:
        """The filters as a query string (for the live stream's URL), empty when none."""
        pairs = [(k, v) for k, v in vars(self).items() if v]
        return urlencode(pairs)

    @property
    def active(self) -> bool:
        return any(vars(self).values())


def inbox_filters(params: Mapping[str, str]) -> InboxFilters:
    """The filters a query string asks for; an unknown state is ignored."""

    def value(name: str) -> str:
        return params.get(name, "").strip()[:200]

    status = value("status")
    return InboxFilters(
        status=status if status in STATUS_FILTERS else "",
        source=value("source"),
        language=value("language").lower(),
        label=value("label"),
        assignee=value("assignee"),
    )


def filter_conversations(
    conversations: Sequence[engager_pb.Conversation], filters: InboxFilters
) -> list[engager_pb.Conversation]:
    """The conversations whose first mention is of the filters' source and language."""

    def keep(conversation: engager_pb.Conversation) -> bool:
        state = conversation.detail
        first = state.mentions[0] if state.mentions else listen_pb2.Mention()
        sources = {first.source, state.channel}
        if filters.source and filters.source not in sources:
            return False
        return not filters.language or first.language.lower() == filters.language

    return [c for c in conversations if keep(c)]


def filter_summary(filters: InboxFilters) -> str:
    """The filters in words, for the inbox's summary ("" when none)."""
    parts = []
    if filters.status:
        parts.append(f"state {STATUS_NAMES[STATUS_FILTERS[filters.status]].lower()}")
    for name in ("source", "language", "label", "assignee"):
        if getattr(filters, name):
            parts.append(
                f"{'assigned to' if name == 'assignee' else name} {getattr(filters, name)}"
            )
    return "; ".join(parts)


PRIORITY_CHOICES: dict[str, engage_pb2.Priority.ValueType] = {
    "urgent": engage_pb2.PRIORITY_URGENT,
    "high": engage_pb2.PRIORITY_HIGH,
    "normal": engage_pb2.PRIORITY_NORMAL,
    "low": engage_pb2.PRIORITY_LOW,
}


def priority_choice(value: str) -> engage_pb2.Priority.ValueType | None:
    """The priority a posted ``priority`` form value asks for, None for anything else."""
    return PRIORITY_CHOICES.get(value)


def labels_of(text: str) -> tuple[str, ...]:
    """Labels typed as a comma-separated list, trimmed, without empties or repeats."""
    seen: dict[str, None] = {}
    for part in text.split(","):
        label = part.strip()[:100]
        if label:
            seen[label] = None
    return tuple(seen)


def reply_languages(saved_replies: Sequence[engager_pb.SavedReply]) -> tuple[str, ...]:
    """Every language some saved reply has a variant in, sorted."""
    return tuple(sorted({language for s in saved_replies for language in s.variants}))


# --- Reply approval ------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingReply:
    conversation_id: str
    conversation_title: str
    reply_id: str
    officer: str
    text: str
    language: str
    created: str
    can_review: bool  # the approval role, and not the reply's author


def pending_replies(
    conversations: Sequence[engager_pb.Conversation], person: Person
) -> tuple[PendingReply, ...]:
    """The replies awaiting approval, oldest first, with whether the person may review them
    (the approval role, never their own reply)."""
    found = []
    for conversation in conversations:
        state = conversation.detail
        for r in state.replies:
            if r.status != engage_pb2.REPLY_STATUS_AWAITING_APPROVAL:
                continue
            created = timestamp(r.created_at)
            found.append(
                (
                    created.timestamp() if created else 0.0,
                    PendingReply(
                        conversation_id=state.conversation_id,
                        conversation_title=_title(state),
                        reply_id=r.reply_id,
                        officer=r.officer,
                        text=r.text,
                        language=r.language or "unknown",
                        created=when(created),
                        can_review=access.may(person.roles, access.REVIEW_REPLY)
                        and r.officer != person.username,
                    ),
                )
            )
    found.sort(key=lambda pair: pair[0])
    return tuple(pending for _, pending in found)


@dataclass(frozen=True)
class ApprovalsPage:
    replies: tuple[PendingReply, ...]
    summary: str


def approvals_page(
    conversations: Sequence[engager_pb.Conversation], person: Person
) -> ApprovalsPage:
    """The replies waiting for approval across the inbox."""
    replies = pending_replies(conversations, person)
    return ApprovalsPage(replies, f"{count(len(replies), 'reply', 'replies')} awaiting approval")


def review_decision(decision: str, comment: str) -> tuple[bool | None, str]:
    """(approve?, error) from the review form: a rejection needs a comment (as the
    engager requires); None when the decision is not one to make."""
    if decision == "approve":
        return True, ""
    if decision == "reject":
        return (False, "") if comment.strip() else (False, "Say why the reply is rejected")
    return None, "Choose to approve or reject"


# --- Questions campaigns -------------------------------------------------------------------

QUESTION_STATUS_NAMES = {
    engage_pb2.QUESTION_STATUS_PENDING: "Awaiting moderation",
    engage_pb2.QUESTION_STATUS_APPROVED: "Accepted",
    engage_pb2.QUESTION_STATUS_REJECTED: "Rejected",
    engage_pb2.QUESTION_STATUS_ANSWERED: "Answered",
}


@dataclass(frozen=True)
class QuestionView:
    question_id: str
    author: str
    text: str
    language: str
    source: str
    asked: str
    status: str
    moderation: str
    answer: str
    can_moderate: bool
    can_answer: bool


@dataclass(frozen=True)
class QuestionsCampaignPage:
    questions_id: str
    title: str
    hashtag: str
    issue_id: str
    is_open: str
    answer_channel: str
    form_path: str
    summary: str
    questions: tuple[QuestionView, ...]


def questions_campaign_page(
    response: engager_pb.QuestionsCampaignResponse, person: Person
) -> QuestionsCampaignPage:
    """A questions campaign with its questions, pending ones first, and the person's
    actions on each (moderate what waits, answer what was accepted)."""
    campaign = response.questions_campaign
    may_moderate = access.may(person.roles, access.MODERATE_QUESTION)
    may_answer = access.may(person.roles, access.ANSWER_QUESTION)
    order = {
        engage_pb2.QUESTION_STATUS_PENDING: 0,
        engage_pb2.QUESTION_STATUS_APPROVED: 1,
        engage_pb2.QUESTION_STATUS_ANSWERED: 2,
        engage_pb2.QUESTION_STATUS_REJECTED: 3,
    }
    questions = sorted(campaign.questions, key=lambda q: (order.get(q.status, 4), q.question_id))
    views = tuple(
        QuestionView(
            question_id=q.question_id,
            author=q.author or "anonymous",
            text=q.text,
            language=q.language or "unknown",
            source=q.source or "unknown",
            asked=when(timestamp(q.asked_at)),
            status=QUESTION_STATUS_NAMES.get(q.status, "Unknown"),
            moderation=", ".join(p for p in (q.moderated_by, q.moderation_note) if p),
            answer=q.answer.text,
            can_moderate=may_moderate and q.status == engage_pb2.QUESTION_STATUS_PENDING,
            can_answer=may_answer and q.status == engage_pb2.QUESTION_STATUS_APPROVED,
        )
        for q in questions
    )
    pending = sum(1 for q in questions if q.status == engage_pb2.QUESTION_STATUS_PENDING)
    return QuestionsCampaignPage(
        questions_id=campaign.questions_id,
        title=campaign.title or campaign.questions_id,
        hashtag=f"#{campaign.hashtag}" if campaign.hashtag else "none",
        issue_id=campaign.issue_id or "none",
        is_open="Taking questions" if campaign.open else "Closed to new questions",
        answer_channel=campaign.answer_channel or "none: answers are recorded only",
        form_path=response.form_path,
        summary=f"{count(len(questions), 'question')}, {pending} awaiting moderation",
        questions=views,
    )


@dataclass(frozen=True)
class QuestionsCampaignRow:
    questions_id: str
    title: str
    issue_id: str
    hashtag: str
    state: str
    state_tag: str
    questions: str
    waiting: str
    updated: str


@dataclass(frozen=True)
class QuestionsCampaignsPage:
    rows: tuple[QuestionsCampaignRow, ...]
    summary: str
    open_only: bool
    next_page: str


def questions_campaigns_page(
    response: engager_pb.ListQuestionsCampaignsResponse, open_only: bool
) -> QuestionsCampaignsPage:
    """One page of questions campaigns (most recently changed first, as the engager lists
    them) with what waits on each: questions to moderate, accepted ones to answer."""
    rows = []
    for summary in response.questions_campaigns:
        campaign = summary.questions_campaign
        waiting = [
            part
            for number, part in (
                (summary.pending, f"{summary.pending:,} awaiting moderation"),
                (summary.approved, f"{summary.approved:,} to answer"),
            )
            if number
        ]
        rows.append(
            QuestionsCampaignRow(
                questions_id=campaign.questions_id,
                title=campaign.title or campaign.questions_id,
                issue_id=campaign.issue_id or "—",
                hashtag=f"#{campaign.hashtag}" if campaign.hashtag else "—",
                state="Taking questions" if campaign.open else "Closed",
                state_tag="govuk-tag--green" if campaign.open else "govuk-tag--grey",
                questions=f"{count(summary.questions, 'question')}, "
                f"{count(summary.answered, 'answer')}",
                waiting=", ".join(waiting) or "nothing",
                updated=when(timestamp(campaign.updated_at)),
            )
        )
    shown = count(len(rows), "questions campaign")
    if open_only:
        shown += " taking questions"
    if response.next_page_token:
        shown += " on this page"
    return QuestionsCampaignsPage(tuple(rows), shown, open_only, response.next_page_token)


@dataclass(frozen=True)
class QuestionsCampaignForm:
    title: str
    issue_id: str
    hashtag: str
    answer_channel: str
    errors: Mapping[str, str]


def questions_campaign_form(
    title: str, issue_id: str, hashtag: str, answer_channel: str
) -> QuestionsCampaignForm:
    """The new questions campaign's fields with an error per missing one."""
    form = QuestionsCampaignForm(
        title.strip(), issue_id.strip(), hashtag.strip().lstrip("#"), answer_channel.strip(), {}
    )
    errors = {}
    if not form.title:
        errors["title"] = "Enter a title"
    if not form.issue_id:
        errors["issue_id"] = "Enter the issue the questions are about"
    if not form.hashtag:
        errors["hashtag"] = "Enter the hashtag that makes a mention a question"
    return QuestionsCampaignForm(
        form.title, form.issue_id, form.hashtag, form.answer_channel, errors
    )


# --- Partners ------------------------------------------------------------------------------

PARTNER_KIND_NAMES = {
    engage_pb2.PARTNER_KIND_NGO: "NGO",
    engage_pb2.PARTNER_KIND_THINK_TANK: "Think tank",
    engage_pb2.PARTNER_KIND_MEDIA: "Media",
    engage_pb2.PARTNER_KIND_ACADEMIC: "Academic",
    engage_pb2.PARTNER_KIND_BUSINESS: "Business",
    engage_pb2.PARTNER_KIND_GOVERNMENT: "Government",
    engage_pb2.PARTNER_KIND_INTERNATIONAL_ORGANISATION: "International organisation",
    engage_pb2.PARTNER_KIND_ONLINE_COMMUNITY: "Online community",
    engage_pb2.PARTNER_KIND_INFLUENCER: "Influencer",
}
STAGE_NAMES = {
    engage_pb2.RELATIONSHIP_STAGE_IDENTIFIED: "Identified",
    engage_pb2.RELATIONSHIP_STAGE_CONTACTED: "Contacted",
    engage_pb2.RELATIONSHIP_STAGE_ENGAGED: "Engaged",
    engage_pb2.RELATIONSHIP_STAGE_PARTNER: "Partner",
    engage_pb2.RELATIONSHIP_STAGE_DORMANT: "Dormant",
}
ACTIVITY_NAMES = {
    engage_pb2.PartnerActivity.KIND_MEETING: "Meeting",
    engage_pb2.PartnerActivity.KIND_CORRESPONDENCE: "Correspondence",
    engage_pb2.PartnerActivity.KIND_CO_PUBLICATION: "Co-publication",
    engage_pb2.PartnerActivity.KIND_ENDORSEMENT: "Endorsement",
    engage_pb2.PartnerActivity.KIND_EVENT: "Event",
    engage_pb2.PartnerActivity.KIND_STAGE_CHANGE: "Stage change",
    engage_pb2.PartnerActivity.KIND_CONVERSATION: "Conversation",
}
# What a person records by hand (stage changes and conversations are recorded by the engager).
RECORDABLE_ACTIVITIES = tuple(
    (int(kind), name)
    for kind, name in ACTIVITY_NAMES.items()
    if kind
    not in (
        engage_pb2.PartnerActivity.KIND_STAGE_CHANGE,
        engage_pb2.PartnerActivity.KIND_CONVERSATION,
    )
)


@dataclass(frozen=True)
class PartnerRow:
    partner_id: str
    name: str
    kind: str
    countries: str
    languages: str
    stage: str
    activities: str


@dataclass(frozen=True)
class PartnersPage:
    rows: tuple[PartnerRow, ...]
    summary: str
    can_register: bool
    kinds: tuple[tuple[int, str], ...]
    stages: tuple[tuple[int, str], ...]


def _choices(names: Mapping[_K, str]) -> tuple[tuple[int, str], ...]:
    return tuple((int(value), name) for value, name in names.items())


def partners_page(partners: Sequence[engage_pb2.PartnerState], person: Person) -> PartnersPage:
    """The partner register by name."""
    rows = tuple(
        PartnerRow(
            partner_id=p.partner_id,
            name=p.name or p.partner_id,
            kind=PARTNER_KIND_NAMES.get(p.kind, "Unknown"),
            countries=", ".join(p.countries) or "—",
            languages=", ".join(p.languages) or "—",
            stage=STAGE_NAMES.get(p.stage, "Unknown"),
            activities=count(len(p.timeline), "activity", "activities"),
        )
        for p in sorted(partners, key=lambda p: ((p.name or p.partner_id).lower(), p.partner_id))
    )
    return PartnersPage(
        rows,
        count(len(rows), "partner"),
        access.may(person.roles, access.REGISTER_PARTNER),
        _choices(PARTNER_KIND_NAMES),
        _choices(STAGE_NAMES),
    )


@dataclass(frozen=True)
class ActivityView:
    kind: str
    title: str
    url: str | None
    occurred: str
    recorded_by: str
    joint: bool
    note: str


@dataclass(frozen=True)
class PartnerPage:
    partner_id: str
    name: str
    kind: str
    countries: str
    languages: str
    issues: str
    stage: str
    stage_value: int
    contacts: tuple[str, ...]
    updated: str
    timeline: tuple[ActivityView, ...]  # newest first
    can_edit: bool
    can_record: bool
    stages: tuple[tuple[int, str], ...]
    activity_kinds: tuple[tuple[int, str], ...]


def partner_page(partner: engage_pb2.PartnerState, person: Person) -> PartnerPage:
    """A partner, its contacts and its timeline (newest first)."""
    timeline = tuple(
        ActivityView(
            kind=ACTIVITY_NAMES.get(a.kind, "Activity"),
            title=a.title,
            url=safe_url(a.url),
            occurred=when(timestamp(a.occurred_at)),
            recorded_by=a.recorded_by or "the engager",
            joint=a.joint,
            note=a.note,
        )
        for a in reversed(partner.timeline)
    )
    contacts = tuple(
        " · ".join(p for p in (c.name, c.role, c.email, ", ".join(c.accounts)) if p)
        for c in partner.contacts
    )
    return PartnerPage(
        partner_id=partner.partner_id,
        name=partner.name or partner.partner_id,
        kind=PARTNER_KIND_NAMES.get(partner.kind, "Unknown"),
        countries=", ".join(partner.countries) or "—",
        languages=", ".join(partner.languages) or "—",
        issues=", ".join(partner.issue_ids) or "—",
        stage=STAGE_NAMES.get(partner.stage, "Unknown"),
        stage_value=int(partner.stage),
        contacts=contacts,
        updated=f"{when(timestamp(partner.updated_at))} by {partner.updated_by or 'unknown'}",
        timeline=timeline,
        can_edit=access.may(person.roles, access.REGISTER_PARTNER),
        can_record=access.may(person.roles, access.RECORD_PARTNER_ACTIVITY),
        stages=_choices(STAGE_NAMES),
        activity_kinds=RECORDABLE_ACTIVITIES,
    )


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _choice(value: str, names: Mapping[_K, str]) -> int:
    try:
        number = int(value)
    except ValueError:
        return 0
    return number if number in names else 0


@dataclass(frozen=True)
class PartnerForm:
    request: engager_pb.RegisterPartnerRequest
    errors: Mapping[str, str]


def partner_form(fields: Mapping[str, str]) -> PartnerForm:
    """A new partner from the register form: its id from ``partner_id`` (or the name),
    lists comma-separated; an error for each missing field (the engager checks the rest)."""
    name = fields.get("name", "").strip()
    partner_id = fields.get("partner_id", "").strip() or "-".join(
        "".join(ch if ch.isalnum() else " " for ch in name.lower()).split()
    )
    request = engager_pb.RegisterPartnerRequest(
        partner_id=partner_id,
        name=name,
        kind=_choice(fields.get("kind", ""), PARTNER_KIND_NAMES),  # type: ignore[arg-type]
        countries=[c.upper() for c in _listed(fields.get("countries", ""))],
        languages=[lang.lower() for lang in _listed(fields.get("languages", ""))],
        issue_ids=_listed(fields.get("issue_ids", "")),
        stage=_choice(fields.get("stage", ""), STAGE_NAMES),  # type: ignore[arg-type]
    )
    errors = {}
    if not name:
        errors["name"] = "Enter the partner's name"
    if not request.kind:
        errors["kind"] = "Choose what kind of partner it is"
    if not request.stage:
        errors["stage"] = "Choose the relationship stage"
    return PartnerForm(request, errors)


def restage(
    partner: engage_pb2.PartnerState, stage: str
) -> engager_pb.RegisterPartnerRequest | None:
    """The register request that keeps everything of the partner but its stage; None when
    the stage is not one to choose."""
    value = _choice(stage, STAGE_NAMES)
    if not value:
        return None
    return engager_pb.RegisterPartnerRequest(
        partner_id=partner.partner_id,
        name=partner.name,
        kind=partner.kind,
        countries=list(partner.countries),
        languages=list(partner.languages),
        issue_ids=list(partner.issue_ids),
        contacts=list(partner.contacts),
        stage=value,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class ActivityForm:
    kind: int
    title: str
    url: str
    note: str
    error: str


def activity_form(kind: str, title: str, url: str, note: str) -> ActivityForm:
    """An activity to record: a kind a person records and a title; a link only http(s)."""
    chosen = _choice(kind, dict(RECORDABLE_ACTIVITIES))
    title, url, note = title.strip(), url.strip(), note.strip()
    error = ""
    if not chosen:
        error = "Choose what kind of activity it was"
    elif not title:
        error = "Enter what happened"
    elif url and safe_url(url) is None:
        error = "Enter a link starting with https:// or http://"
    return ActivityForm(chosen, title, url, note, error)
