"""The duplicate index after a restart: rebuilt from the mentions the listener emitted.

Every Mention on ``legation.listen.mentions.v1`` carries the decision taken for it
(``duplicate_of``), so replaying the topic gives back the same originals whatever the order
of its partitions (see :mod:`legation_listener.domain.duplicates`). Only mentions published
within :data:`WINDOW_DAYS` are replayed: a copy of an older story is rare and the index
stays bounded.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from legation.events.v1 import listen_pb2
from legation_core.codec import EventCodec
from legation_core.config import CoreSettings
from legation_listener.adapters.replay import MentionSink, replay_mentions
from legation_listener.domain.duplicates import DuplicateIndex

log = logging.getLogger(__name__)

WINDOW_DAYS = 14


def mention_text(mention: listen_pb2.Mention) -> str:
    """The text the duplicate index compares, as enrichment gave it (title and text)."""
    return f"{mention.title}. {mention.text}" if mention.title else mention.text


def duplicate_sink(index: DuplicateIndex) -> MentionSink:
    """The replay sink that folds mentions into ``index``."""

    def take(issue_id: str, mention: listen_pb2.Mention) -> None:
        index.observe(
            issue_id, mention.mention_id, mention_text(mention),
            mention.published_at.ToDatetime(tzinfo=UTC), mention.duplicate_of,
        )  # fmt: skip

    return MentionSink("duplicates", WINDOW_DAYS, take)


def rebuild_duplicate_index(
    settings: CoreSettings,
    codec: EventCodec,
    index: DuplicateIndex,
    now: datetime | None = None,
    timeout: float = 60.0,
) -> int:
    """Replays the recent mentions of the topic into ``index``; returns how many."""
    replayed = replay_mentions(settings, codec, [duplicate_sink(index)], now, timeout)
    log.info(
        "duplicate index rebuilt",
        extra={"mentions": replayed["duplicates"], "originals": len(index)},
    )
    return replayed["duplicates"]
