"""What goes out: due notifications grouped into messages, and their words.

A notification meant to go at once is one message; the digest notifications of one person,
channel and digest time are one message (the daily digest). A message's id derives from
what it carries, so planning the same notifications again plans the same message.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from legation.events.v1 import notify_pb2
from legation_core.ids import stable_id

NotificationState = notify_pb2.NotificationState
MAX_DIGEST_ITEMS = 200
"""Items one digest lists; more go to the next digest message of the same slot."""


@dataclass(frozen=True)
class Planned:
    """A message to record (then deliver)."""

    message_id: str
    person: str
    channel: str
    digest: bool
    notifications: tuple[NotificationState, ...]
    subject: str
    text: str
    link: str


def plan_messages(
    notifications: Iterable[NotificationState], taken: Collection[str], now: datetime
) -> list[Planned]:
    """The messages of every notification due at ``now`` that no message carries yet
    (``taken``: notification ids already in a message)."""
    singles: list[NotificationState] = []
    digests: dict[tuple[str, str, int], list[NotificationState]] = {}
    for notification in notifications:
        if notification.notification_id in taken:
            continue
        if notification.deliver_at.ToDatetime(tzinfo=UTC) > now:
            continue
        if notification.digest:
            slot = notification.deliver_at.seconds
            digests.setdefault((notification.person, notification.channel, slot), []).append(
                notification
            )
        else:
            singles.append(notification)
    planned = [_single(notification) for notification in singles]
    for (person, channel, slot), items in sorted(digests.items()):
        items.sort(key=lambda n: (n.created_at.ToNanoseconds(), n.notification_id))
        for part in range(0, len(items), MAX_DIGEST_ITEMS):
            planned.append(
                _digest(person, channel, slot, part, items[part : part + MAX_DIGEST_ITEMS])
            )
    return planned


def _single(notification: NotificationState) -> Planned:
    # The channel shows the link (a button, a line of its own).
    text = notification.text
    return Planned(
        message_id=stable_id("message", notification.notification_id),
        person=notification.person,
        channel=notification.channel,
        digest=False,
        notifications=(notification,),
        subject=notification.title,
        text=text,
        link=notification.link,
    )


def _digest(
    person: str, channel: str, slot: int, part: int, items: list[NotificationState]
) -> Planned:
    day = datetime.fromtimestamp(slot, UTC)
    # An episode that opened and closed since the last digest is one line, marked over.
    episodes: dict[str, list[NotificationState]] = {}
    for item in items:
        episodes.setdefault(item.episode_id or item.notification_id, []).append(item)
    lines = []
    for number, phases in enumerate(episodes.values(), start=1):
        item = next((n for n in phases if n.phase == "open"), phases[0])
        over = any(n.phase == "resolved" for n in phases) and item.phase == "open"
        lines.append(f"{number}. {item.title}" + (" (over now)" if over else ""))
        first = item.text.split("\n", 1)[0]
        if first and first != item.title:
            lines.append(f"   {first}")
        if item.link:
            lines.append(f"   {item.link}")
    count = len(episodes)
    return Planned(
        message_id=stable_id("digest", person, channel, str(slot), str(part)),
        person=person,
        channel=channel,
        digest=True,
        notifications=tuple(items),
        subject=f"Legation digest: {count} item{'s' if count != 1 else ''} "
        f"({day:%Y-%m-%d %H:%M} UTC)",
        text="\n".join(lines),
        link=items[0].link if count == 1 else "",
    )
