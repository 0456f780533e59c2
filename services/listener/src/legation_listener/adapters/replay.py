"""One read of the mentions topic at start-up, for everything rebuilt from it.

The duplicate index (:mod:`legation_listener.adapters.duplicates`) and the mention window
of discovery, themes and tone (:mod:`legation_listener.domain.observed`) are both rebuilt
from the mentions the listener emitted; reading the topic once for both halves the start-up
read. Each sink takes the mentions published within its own number of days.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from legation.events.v1 import listen_pb2
from legation_core.codec import EventCodec, payload_of
from legation_core.config import CoreSettings
from legation_core.kafka import read_topic
from legation_core.topic_names import LISTEN_MENTIONS_V1
from legation_listener.adapters.state import SERVICE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MentionSink:
    """Takes ``(issue_id, mention)`` for every mention published within ``days``."""

    name: str
    days: int
    take: Callable[[str, listen_pb2.Mention], None]


def replay_mentions(
    settings: CoreSettings,
    codec: EventCodec,
    sinks: Sequence[MentionSink],
    now: datetime | None = None,
    timeout: float = 60.0,
) -> dict[str, int]:
    """Reads the mentions topic to its end once and hands each recent mention to every sink
    that wants it; returns how many each sink took."""
    now = now or datetime.now(UTC)
    since = {sink.name: now - timedelta(days=sink.days) for sink in sinks}
    taken = {sink.name: 0 for sink in sinks}
    for envelope in read_topic(settings, SERVICE, codec, LISTEN_MENTIONS_V1, timeout):
        mention = payload_of(envelope)
        if not isinstance(mention, listen_pb2.Mention):
            continue
        published = mention.published_at.ToDatetime(tzinfo=UTC)
        for sink in sinks:
            if published >= since[sink.name]:
                sink.take(envelope.issue_id, mention)
                taken[sink.name] += 1
    log.info("mentions replayed", extra={"taken": taken})
    return taken
