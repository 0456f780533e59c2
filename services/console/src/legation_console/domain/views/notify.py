"""The notifications pages' view models, from the notifier's responses. No I/O.

A person's inbox (the notifier's console channel): what, where, when, the link into the
console, read or not; the bell's words; and, for operators, the messages the notifier could
not finish with the actions their roles allow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from legation.events.v1 import notify_pb2, publish_pb2
from legation.notifier.v1 import notifier_service_pb2 as notifier_pb
from legation_console.domain import access
from legation_console.domain.formatting import count, excerpt, safe_url, timestamp, when
from legation_console.domain.people import Person

KIND_LABELS = {
    "spike": "Spike",
    "source": "Source failing",
    "approval": "Approval",
    "sla-breach": "SLA breach",
    "delivery": "Delivery",
    "objective": "Objective",
}
"""The notifier's kinds (services/notifier: ``domain/people.py: KINDS``) in words."""


@dataclass(frozen=True)
class Bell:
    """The header's bell: a count and the link's accessible name."""

    unread: int

    @property
    def label(self) -> str:
        """``Notifications, 3 unread`` (the link's accessible name)."""
        return f"Notifications, {self.unread} unread"

    @property
    def shown(self) -> str:
        """The badge: the count, 99+ above that."""
        return "99+" if self.unread > 99 else str(self.unread)


@dataclass(frozen=True)
class InboxItem:
    message_id: str
    title: str
    text: str
    kind: str
    where: str
    at: str
    link: str | None
    unread: bool


@dataclass(frozen=True)
class InboxPage:
    items: tuple[InboxItem, ...]
    bell: Bell
    next_page: str
    may_mark: bool

    @property
    def summary(self) -> str:
        return count(self.bell.unread, "unread notification")


def console_link(link: str, public_url: str) -> str | None:
    """A notification's link as the console shows it: a path when it points into this
    console (so it works on whichever host the person reached it by), else an http(s) URL,
    else nothing."""
    safe = safe_url(link)
    if safe is None:
        return None
    parts = urlsplit(safe)
    own = urlsplit(public_url)
    if (parts.scheme, parts.netloc) == (own.scheme, own.netloc):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return safe


def _where(message: notify_pb2.NotificationMessage) -> str:
    places = []
    if message.campaign_id:
        places.append(f"campaign {message.campaign_id}")
    if message.issue_id:
        places.append(f"issue {message.issue_id}")
    return ", ".join(places)


def inbox_page(
    response: notifier_pb.ListMyNotificationsResponse, person: Person, public_url: str
) -> InboxPage:
    """The person's notifications, unread first (the notifier's order)."""
    items = tuple(
        InboxItem(
            message_id=message.message_id,
            title=message.subject,
            text=excerpt(message.text, 1000),
            kind=KIND_LABELS.get(message.kind, message.kind or "Notice"),
            where=_where(message),
            at=when(timestamp(message.created_at)),
            link=console_link(message.link, public_url),
            unread=not message.HasField("read_at"),
        )
        for message in response.notifications
    )
    return InboxPage(
        items,
        Bell(response.unread_count),
        response.next_page_token,
        access.may(person.roles, access.MARK_NOTIFICATIONS_READ),
    )


STATUS_WORDS = {
    publish_pb2.DELIVERY_STATUS_FAILED: "failed",
    publish_pb2.DELIVERY_STATUS_NEEDS_CHECK: "needs a check",
}


@dataclass(frozen=True)
class StuckMessage:
    message_id: str
    person: str
    channel: str
    subject: str
    status: str
    reason: str
    attempts: int
    at: str
    can_retry: bool
    can_cancel: bool
    can_confirm: bool


@dataclass(frozen=True)
class StuckPage:
    messages: tuple[StuckMessage, ...]


def stuck_page(messages: Sequence[notify_pb2.NotificationMessage], person: Person) -> StuckPage:
    """Failed and needs-check messages with what the person's roles allow on each."""
    may_retry = access.may(person.roles, access.RETRY_MESSAGE)
    may_cancel = access.may(person.roles, access.CANCEL_MESSAGE)
    may_confirm = access.may(person.roles, access.CONFIRM_MESSAGE)
    return StuckPage(
        tuple(
            StuckMessage(
                message_id=m.message_id,
                person=m.person,
                channel=m.channel,
                subject=m.subject,
                status=STATUS_WORDS.get(m.delivery.status, "other"),
                reason=m.delivery.reason,
                attempts=m.delivery.attempts,
                at=when(timestamp(m.created_at)),
                can_retry=may_retry,
                can_cancel=may_cancel,
                can_confirm=may_confirm
                and m.delivery.status == publish_pb2.DELIVERY_STATUS_NEEDS_CHECK,
            )
            for m in messages
        )
    )


@dataclass(frozen=True)
class KindRow:
    kind: str
    how: str


@dataclass(frozen=True)
class PreferencesPage:
    known: bool
    facts: tuple[tuple[str, str], ...]
    kinds: tuple[KindRow, ...]


def _ids(label: str, values: Sequence[str]) -> str:
    return f"{label}: {', '.join(values)}" if values else ""


def preferences_page(response: notifier_pb.GetMyPreferencesResponse) -> PreferencesPage:
    """The person's effective preferences in words (read-only)."""
    if not response.known:
        return PreferencesPage(False, (), ())
    r = response
    quiet = f"{r.quiet_from} to {r.quiet_to}" if r.quiet_from else "none"
    follows = [_ids("campaigns", r.follows_campaigns), _ids("issues", r.follows_issues)]
    mutes = [_ids("campaigns", r.mutes_campaigns), _ids("issues", r.mutes_issues)]
    owns = [_ids("campaigns", r.owns_campaigns), _ids("issues", r.owns_issues)]
    facts = (
        ("Time zone", r.time_zone),
        ("Channels", ", ".join(r.channels) + f" (default {r.default_channel})"),
        ("Console inbox", "yes, a copy of everything" if r.console else "off"),
        ("Daily digest at", f"{r.digest_at} local time"),
        ("Quiet hours", quiet),
        ("Owns", "; ".join(x for x in owns if x) or "nothing"),
        ("Follows", "; ".join(x for x in follows if x) or "nothing"),
        ("Mutes", "; ".join(x for x in mutes if x) or "nothing"),
    )
    kinds = tuple(
        KindRow(
            KIND_LABELS.get(k.kind, k.kind),
            f"{'at once' if k.mode == 'immediate' else 'in the digest'} by {k.channel}"
            if k.enabled
            else "off",
        )
        for k in r.kinds
    )
    return PreferencesPage(True, facts, kinds)
