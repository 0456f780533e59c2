"""The recent mentions of each issue, kept for discovery, themes and tone (no I/O).

Discovery (communities, voices, source suggestions), themes and tone are all computed on
demand from the same bounded window of an issue's mentions, instead of each keeping its own
running aggregate: a request may choose its window, themes need the texts anyway, and one
store is rebuilt at start-up from the mentions topic in the same pass as the duplicate index
(:mod:`legation_listener.adapters.replay`), then fed every mention Kafka acknowledged.

Each issue keeps at most ``per_issue`` mentions (the most recently published) of the last
``max_age``; a mention seen again (a poll retried after a failed send, the replay) replaces
its earlier copy. Texts are cut to :data:`TEXT_CHARS` characters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from legation.events.v1 import listen_pb2

TEXT_CHARS = 2000
DEFAULT_PER_ISSUE = 5000
DEFAULT_MAX_AGE = timedelta(days=30)


@dataclass(frozen=True)
class Observed:
    """What the analyses read of one mention."""

    mention_id: str
    source: str
    source_url: str
    item_id: str
    url: str
    author: str
    author_id: str
    title: str
    text: str
    language: str
    sentiment: str
    stance: str
    reach: int
    influence: float
    published_at: datetime
    hashtags: tuple[str, ...] = ()
    links: tuple[str, ...] = ()
    mentioned_accounts: tuple[str, ...] = ()
    matched_keywords: tuple[str, ...] = ()
    in_reply_to: str = ""
    thread_id: str = ""
    duplicate_of: str = ""

    @property
    def full_text(self) -> str:
        """Title and text, as one string."""
        return f"{self.title}. {self.text}" if self.title else self.text


def observed_from(mention: listen_pb2.Mention) -> Observed:
    """The part of a Mention the analyses read."""
    return Observed(
        mention_id=mention.mention_id,
        source=mention.source,
        source_url=mention.source_url,
        item_id=mention.item_id,
        url=mention.url,
        author=mention.author,
        author_id=mention.author_id,
        title=mention.title[:TEXT_CHARS],
        text=mention.text[:TEXT_CHARS],
        language=mention.language or "und",
        sentiment=mention.sentiment.value or "unknown",
        stance=mention.stance.value or "unknown",
        reach=max(0, mention.reach),
        influence=mention.influence,
        published_at=mention.published_at.ToDatetime(tzinfo=UTC),
        hashtags=tuple(mention.hashtags),
        links=tuple(mention.links),
        mentioned_accounts=tuple(mention.mentioned_accounts),
        matched_keywords=tuple(mention.matched_keywords),
        in_reply_to=mention.in_reply_to,
        thread_id=mention.thread_id,
        duplicate_of=mention.duplicate_of,
    )


class MentionWindow:
    """The recent mentions of every issue, bounded; safe to share between threads."""

    def __init__(
        self, per_issue: int = DEFAULT_PER_ISSUE, max_age: timedelta = DEFAULT_MAX_AGE
    ) -> None:
        self.per_issue = max(1, per_issue)
        self.max_age = max_age
        self._lock = threading.Lock()
        self._issues: dict[str, dict[str, Observed]] = {}

    def add(self, issue_id: str, mentions: Iterable[Observed], now: datetime) -> None:
        """Keeps ``mentions`` of ``issue_id`` (older than ``max_age`` are not kept)."""
        oldest = now - self.max_age
        with self._lock:
            kept = self._issues.setdefault(issue_id, {})
            for mention in mentions:
                if mention.published_at >= oldest:
                    kept[mention.mention_id] = mention
            # Trimmed in bulk once 10% over, so adding stays cheap.
            if len(kept) > self.per_issue + self.per_issue // 10:
                newest = sorted(kept.values(), key=lambda m: (m.published_at, m.mention_id))
                self._issues[issue_id] = {
                    m.mention_id: m for m in newest[-self.per_issue :] if m.published_at >= oldest
                }

    def add_mentions(
        self,
        issue_id: str,
        mentions: Iterable[listen_pb2.Mention],
        now: datetime | None = None,
    ) -> None:
        """Keeps Mention events' payloads (``now``: the current time by default)."""
        self.add(issue_id, [observed_from(m) for m in mentions], now or datetime.now(UTC))

    def add_mention(self, issue_id: str, mention: listen_pb2.Mention) -> None:
        """Keeps one Mention event's payload."""
        self.add_mentions(issue_id, [mention])

    def mentions(
        self, issue_id: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[Observed]:
        """The kept mentions of ``issue_id`` published in ``[since, until)``, oldest first
        (at most ``per_issue``)."""
        with self._lock:
            kept = list(self._issues.get(issue_id, {}).values())
        chosen = [
            m
            for m in kept
            if (since is None or m.published_at >= since)
            and (until is None or m.published_at < until)
        ]
        chosen.sort(key=lambda m: (m.published_at, m.mention_id))
        return chosen[-self.per_issue :]

    def forget(self, issue_id: str) -> None:
        """Drops an issue's mentions (it was deleted)."""
        with self._lock:
            self._issues.pop(issue_id, None)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(kept) for kept in self._issues.values())
