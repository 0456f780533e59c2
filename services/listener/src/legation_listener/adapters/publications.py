"""Our publications, for comparing the arguments of an issue with what we said.

The listener reads ``legation.publish.publications.v1`` to its end at start-up, then
follows it in a consumer group (``legation.listener.publications``): a publication counts
for an issue when its envelope names the issue or one of the issue's campaigns. A post
published on several channels is one text: publications are kept per post (the latest
channel's copy), at most :data:`MAX_POSTS` posts (the most recent).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from legation.events.v1 import publish_pb2
from legation_core.codec import Envelope, EventCodec, payload_of
from legation_core.config import CoreSettings
from legation_core.consumer import BatchResult, Incoming
from legation_core.kafka import read_topic
from legation_core.topic_names import PUBLISH_PUBLICATIONS_V1
from legation_listener.adapters.state import SERVICE
from legation_listener.domain.themes import PublicationText

log = logging.getLogger(__name__)

MAX_POSTS = 10_000


@dataclass(frozen=True)
class KeptPublication:
    issue_id: str
    campaign_id: str
    published_at: datetime
    text: PublicationText


class PublicationStore:
    """Our recent publications by post; safe to share between threads."""

    def __init__(self, max_posts: int = MAX_POSTS) -> None:
        self.max_posts = max_posts
        self._lock = threading.Lock()
        self._posts: dict[str, KeptPublication] = {}

    def apply(self, envelope: Envelope) -> None:
        """Keeps one Publication event (others are ignored)."""
        publication = payload_of(envelope)
        if not isinstance(publication, publish_pb2.Publication):
            return
        kept = KeptPublication(
            issue_id=envelope.issue_id,
            campaign_id=envelope.campaign_id,
            published_at=publication.published_at.ToDatetime(tzinfo=UTC),
            text=PublicationText(
                publication_id=publication.publication_id,
                title=publication.title,
                body=publication.body,
            ),
        )
        with self._lock:
            self._posts[publication.post_id or publication.publication_id] = kept
            if len(self._posts) > self.max_posts + self.max_posts // 10:
                newest = sorted(self._posts.items(), key=lambda pair: pair[1].published_at)
                self._posts = dict(newest[-self.max_posts :])

    def for_issue(
        self, issue_id: str, campaign_ids: Sequence[str], until: datetime | None = None
    ) -> list[PublicationText]:
        """The publications about the issue or its campaigns (published before ``until``),
        oldest first."""
        campaigns = set(campaign_ids)
        with self._lock:
            kept = list(self._posts.values())
        chosen = [
            k
            for k in kept
            if (k.issue_id == issue_id or (k.campaign_id and k.campaign_id in campaigns))
            and (until is None or k.published_at < until)
        ]
        chosen.sort(key=lambda k: (k.published_at, k.text.publication_id))
        return [k.text for k in chosen]

    def __len__(self) -> int:
        with self._lock:
            return len(self._posts)

    def rebuild(self, settings: CoreSettings, codec: EventCodec, timeout: float = 60.0) -> int:
        """Reads the publications topic to its end into the store; returns how many."""
        count = 0
        for envelope in read_topic(settings, SERVICE, codec, PUBLISH_PUBLICATIONS_V1, timeout):
            self.apply(envelope)
            count += 1
        log.info("publications read", extra={"publications": count, "posts": len(self)})
        return count

    def __call__(self, batch: Sequence[Incoming]) -> BatchResult:
        """The consumer group's handler: keeps every publication of the batch."""
        for incoming in batch:
            self.apply(incoming.envelope)
        return BatchResult()
