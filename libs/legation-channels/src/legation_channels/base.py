"""The one interface every channel adapter implements, and the checks shared by all.

The publisher delivers posts and the engager delivers replies through the same adapters.
Delivery must never double-post: every message carries an idempotency key, stable for one
(post or reply, channel), and each adapter says how it keeps that promise (``reconcile``):

* ``idempotency-key``: the channel itself deduplicates on the key (Mastodon's
  Idempotency-Key header, a webhook receiver that honours ours);
* ``lookup``: the adapter can look on the channel for what it published under the key (our
  Atom feed, WordPress by slug, Bluesky by record key), so a retry finds it first;
* ``none``: the channel can do neither (SMTP, Telegram). The caller records "sending"
  before it sends; a delivery found in that state after a crash is not re-sent blindly but
  marked for a person to check, which keeps the never-twice promise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import regex

from legation_core.consumer import TransientError

MediaKind = Literal["image", "video", "document"]
# http(s) URLs in running text; a trailing full stop, comma or bracket belongs to the
# sentence, not to the link.
LINK_IN_TEXT = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
Reconcile = Literal["idempotency-key", "lookup", "none"]


@dataclass(frozen=True)
class Media:
    """An attachment, by reference: the channel fetches or links ``url``."""

    url: str
    kind: MediaKind
    alt_text: str = ""
    mime_type: str = ""


@dataclass(frozen=True)
class Outgoing:
    """One message for one channel: a post's channel variant, or a reply."""

    idempotency_key: str
    text: str
    title: str = ""
    language: str = "en"
    link: str = ""
    media: tuple[Media, ...] = ()
    # The channel's own id of the item this message answers (replies); empty for posts.
    in_reply_to: str = ""
    author: str = ""


@dataclass(frozen=True)
class Delivered:
    """What the channel holds for a message: its own id and public URL."""

    channel_item_id: str
    url: str
    published_at: datetime
    # False when the message was already there (a retry found it).
    newly_published: bool


@dataclass(frozen=True)
class ChannelLimits:
    """What a channel accepts; :func:`problems` checks a message against it."""

    max_text_length: int | None = None
    max_title_length: int | None = None
    max_media: int = 0
    media_kinds: frozenset[MediaKind] = field(default_factory=frozenset)
    alt_text_required: bool = False
    supports_replies: bool = False
    # Bluesky counts graphemes (user-perceived characters), not code points.
    count_graphemes: bool = False
    # The adapter appends ``link`` to the text (unless the text already has it), so it
    # counts against ``max_text_length``: at ``url_length`` characters where the channel
    # counts every URL as a fixed length (Mastodon: 23), else at its real length.
    link_in_text: bool = False
    url_length: int | None = None
    # The text limit when the message carries media, where it becomes a caption (Telegram).
    max_caption_length: int | None = None


@dataclass(frozen=True)
class FieldProblem:
    """Why a message does not fit a channel, naming the field."""

    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field} {self.problem}"


class ChannelError(Exception):
    """A delivery failed in a way retrying will not fix; the message says why."""


class ChannelRejected(ChannelError):
    """The channel refused this message (bad content, authentication, permissions)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class ChannelUnavailable(TransientError):
    """The channel could not be reached, timed out or rate-limited us; retrying the same
    message (same idempotency key) is safe. ``retry_after`` is the channel's own hint.

    ``maybe_delivered`` is True when the request may have reached the channel before the
    failure (a timeout waiting for the answer, a connection dropped after sending): on a
    channel whose reconcile mode is ``none`` the outbox then asks a person to check rather
    than sending again."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, maybe_delivered: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.maybe_delivered = maybe_delivered


class Channel(Protocol):
    """Somewhere we publish or reply."""

    @property
    def name(self) -> str:
        """This channel's name in events and configuration, for example ``mastodon-main``."""
        ...

    @property
    def kind(self) -> str:
        """The adapter, for example ``mastodon``."""
        ...

    @property
    def limits(self) -> ChannelLimits: ...

    @property
    def reconcile(self) -> Reconcile: ...

    def deliver(self, message: Outgoing) -> Delivered:
        """Publishes ``message`` unless the channel already holds it. Raises
        ChannelUnavailable when a retry may help, ChannelRejected / ChannelError otherwise."""
        ...

    def find(self, idempotency_key: str) -> Delivered | None:
        """What the channel holds for ``idempotency_key``, or None. Only meaningful when
        ``reconcile`` is ``lookup``; other adapters return None."""
        ...


def problems(message: Outgoing, limits: ChannelLimits) -> list[FieldProblem]:
    """Every way ``message`` does not fit ``limits`` (empty when it fits)."""
    found: list[FieldProblem] = []
    if not message.idempotency_key.strip():
        found.append(FieldProblem("idempotency_key", "is required"))
    if not message.text.strip() and not message.media:
        found.append(FieldProblem("text", "is required"))
    most = limits.max_caption_length if message.media else None
    if most is None:
        most = limits.max_text_length
    if most is not None:
        length = text_length(message, limits)
        if length > most:
            unit = "graphemes" if limits.count_graphemes else "characters"
            if limits.link_in_text and message.link:
                unit += " with its link"
            suffix = " with media" if message.media and limits.max_caption_length else ""
            found.append(
                FieldProblem(
                    "text", f"is {length} {unit}; this channel takes at most {most}{suffix}"
                )
            )
    if limits.max_title_length is not None and len(message.title) > limits.max_title_length:
        found.append(FieldProblem("title", f"is longer than {limits.max_title_length} characters"))
    if len(message.media) > limits.max_media:
        found.append(
            FieldProblem("media", f"has {len(message.media)} items; at most {limits.max_media}")
        )
    for position, media in enumerate(message.media):
        if media.kind not in limits.media_kinds:
            found.append(FieldProblem(f"media[{position}].kind", f"{media.kind} is not accepted"))
        if limits.alt_text_required and not media.alt_text.strip():
            found.append(FieldProblem(f"media[{position}].alt_text", "is required"))
    if message.in_reply_to and not limits.supports_replies:
        found.append(FieldProblem("in_reply_to", "this channel does not take replies"))
    return found


def text_length(message: Outgoing, limits: ChannelLimits) -> int:
    """The length the channel counts for ``message``: graphemes or characters, with the
    link when the adapter appends it to the text."""
    if limits.count_graphemes:
        length = len(regex.findall(r"\X", message.text))
    else:
        length = len(message.text)
    if limits.link_in_text and message.link and message.link not in message.text:
        # Two characters for the blank line the adapters put before the link.
        length += 2 + (limits.url_length if limits.url_length is not None else len(message.link))
    return length


def text_with_link(message: Outgoing) -> str:
    """The text as channels that carry the link inside it publish it."""
    if message.link and message.link not in message.text:
        return f"{message.text}\n\n{message.link}" if message.text else message.link
    return message.text


def with_short_links(text: str, short_link_length: int) -> str:
    """``text`` with every http(s) link replaced by a stand-in of ``short_link_length``
    characters (the publisher's short links all have one length), so that
    :func:`text_length` counts it as the channel will get it; unchanged when 0."""
    if short_link_length <= 0:
        return text
    return LINK_IN_TEXT.sub(lambda _: "x" * short_link_length, text)
