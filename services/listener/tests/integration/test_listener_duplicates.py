"""The duplicate index is rebuilt from the mentions topic after a restart: a copy seen after
the restart still links to the original emitted before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from legation.events.v1 import listen_pb2
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_core.config import CoreSettings
from legation_core.kafka import EventProducer
from legation_core.metrics import Metrics
from legation_core.topic_names import LISTEN_MENTIONS_V1
from legation_listener.adapters.duplicates import WINDOW_DAYS, rebuild_duplicate_index
from legation_listener.domain.duplicates import DuplicateIndex
from legation_listener.domain.enrichment import enrich_mention
from legation_listener.domain.mentions import mention_envelope

pytestmark = pytest.mark.integration

STORY = (
    "Delegates from 170 countries resumed talks on a global plastics treaty in Nairobi on "
    "Monday, aiming to agree limits on production before the end of the year."
)


def test_a_restarted_listener_still_links_copies_to_originals_emitted_before(
    kafka_settings: CoreSettings, unique: str
) -> None:
    issue = listen_pb2.TrackedIssue(issue_id=f"dup-{unique}", name="plastics treaty")
    now = datetime.now(UTC)
    before = DuplicateIndex()
    emitted = []
    for mention_id, text in [("m1", STORY), ("m2", "RT @unep: " + STORY)]:
        mention = listen_pb2.Mention(mention_id=f"{unique}-{mention_id}", text=text)
        mention.published_at.FromDatetime(now)
        emitted.append(enrich_mention(mention, issue, before))
    assert emitted[1].duplicate_of == emitted[0].mention_id
    # An original older than the replay window is not brought back.
    old = listen_pb2.Mention(mention_id=f"{unique}-old", text="An old story. " + STORY[::-1])
    old.published_at.FromDatetime(now - timedelta(days=WINDOW_DAYS + 1))
    emitted.append(enrich_mention(old, issue, before))

    producer = EventProducer(kafka_settings, "listener", default_catalog(), Metrics())
    try:
        producer.send_and_wait(
            [(LISTEN_MENTIONS_V1, m.mention_id, mention_envelope(issue, m, now)) for m in emitted]
        )
    finally:
        producer.close()

    after = DuplicateIndex()  # the restarted process
    codec = EventCodec(default_catalog())
    assert rebuild_duplicate_index(kafka_settings, codec, after, now=now) >= 2
    late = listen_pb2.Mention(mention_id=f"{unique}-m3", text=STORY + " https://t.co/x")
    late.published_at.FromDatetime(now)
    assert enrich_mention(late, issue, after).duplicate_of == emitted[0].mention_id
    stale = listen_pb2.Mention(mention_id=f"{unique}-m4", text="An old story. " + STORY[::-1])
    stale.published_at.FromDatetime(now)
    assert enrich_mention(stale, issue, after).duplicate_of == ""  # out of the window
    # A mention emitted before the restart and polled again keeps its first answer.
    assert after.check(issue.issue_id, emitted[1].mention_id, "", now) == emitted[0].mention_id
