"""Engage pages: the inbox by priority and SLA deadline, and a conversation's thread with
what the person may do on it. No I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from legation.engager.v1 import engager_service_pb2 as engager_pb
from legation.events.v1 import engage_pb2, listen_pb2
from legation_console.domain import access
from legation_console.domain.formatting import count, excerpt, safe_url, timestamp, until, when
from legation_console.domain.people import Person

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


def _sort_key(state: engage_pb2.ConversationState) -> tuple[int, float, str]:
    due = timestamp(state.sla_due_at)
    return (-int(state.priority), due.timestamp() if due else float("inf"), state.conversation_id)


def inbox_page(
    conversations: Sequence[engager_pb.Conversation], person: Person, mine: bool, now: datetime
) -> InboxPage:
    """Open conversations first by priority, then by the nearest first-response deadline."""
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
    return InboxPage(tuple(rows), summary, mine)


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
    )


@dataclass(frozen=True)
class ReplyForm:
    """What the person chose: a saved reply or their own text (one of them)."""

    saved_reply_id: str
    text: str
    error: str = ""


def reply_form(saved_reply_id: str, text: str) -> ReplyForm:
    """The reply form with its error, if any: exactly one of a saved reply or a text."""
    saved, own = saved_reply_id.strip(), text.strip()
    if not saved and not own:
        return ReplyForm(saved, own, "Choose a saved reply or write a reply")
    if saved and own:
        return ReplyForm(saved, own, "Choose a saved reply or write a reply, not both")
    return ReplyForm(saved, own)
