"""Mention building: deterministic ids, every field filled from the issue and the item."""

from __future__ import annotations

from datetime import UTC, datetime

from legation.events.v1 import listen_pb2
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_core.ids import stable_id
from legation_listener.domain.items import FeedItem
from legation_listener.domain.mentions import mention_id_for, mentions_for

FEED = "https://news.example.org/feed.xml"
PUBLISHED = datetime(2026, 11, 20, 9, 15, tzinfo=UTC)
OBSERVED = datetime(2026, 11, 20, 9, 16, 2, tzinfo=UTC)

ISSUE = listen_pb2.TrackedIssue(
    issue_id="plastics-treaty",
    name="Global plastics treaty",
    keywords=["plastics treaty", "plastic pollution"],
    feeds=[FEED],
    campaign_ids=["plastics-2026", "oceans-2026"],
    active=True,
)


def item(item_id: str, title: str, text: str = "", language: str = "en") -> FeedItem:
    return FeedItem(
        item_id=item_id,
        url=f"https://news.example.org/{item_id}",
        title=title,
        text=text,
        author="A. Reporter",
        published_at=PUBLISHED,
        language=language,
    )


def test_mention_id_is_deterministic_per_issue_and_item() -> None:
    assert mention_id_for("plastics-treaty", "g1") == stable_id("mention", "plastics-treaty", "g1")
    assert mention_id_for("plastics-treaty", "g1") == mention_id_for("plastics-treaty", "g1")
    assert mention_id_for("plastics-treaty", "g1") != mention_id_for("other", "g1")
    assert mention_id_for("plastics-treaty", "g1") != mention_id_for("plastics-treaty", "g2")


def test_only_matching_items_become_mentions() -> None:
    items = [
        item("g1", "Plastics treaty talks resume", "A wonderful, hopeful step forward."),
        item("g2", "Football results", "Nothing about it."),
        item("g3", "Rivers", "Plastic pollution is a terrible disaster.", language="en-GB"),
    ]
    envelopes = mentions_for(ISSUE, FEED, items, observed_at=OBSERVED)
    assert [e.mention.item_id for e in envelopes] == ["g1", "g3"]
    assert [list(e.mention.matched_keywords) for e in envelopes] == [
        ["plastics treaty"],
        ["plastic pollution"],
    ]
    assert [e.mention.sentiment.value for e in envelopes] == ["positive", "negative"]


def test_mention_and_envelope_fields() -> None:
    [envelope] = mentions_for(
        ISSUE, FEED, [item("g1", "Plastics treaty talks", "Le texte.", "fr")], OBSERVED
    )
    mention = envelope.mention
    assert mention.mention_id == stable_id("mention", "plastics-treaty", "g1")
    assert (mention.source, mention.source_url) == ("rss", FEED)
    assert (mention.item_id, mention.url) == ("g1", "https://news.example.org/g1")
    assert (mention.title, mention.text, mention.author) == (
        "Plastics treaty talks",
        "Le texte.",
        "A. Reporter",
    )
    assert mention.language == "fr"
    # Enriched: the French sentiment model read it; stance has no French model.
    assert mention.sentiment.model == "legation-sentiment-fr"
    assert mention.stance == listen_pb2.Label(value="unknown", score=0.0, model="none")
    assert mention.reach == 0
    assert mention.published_at.ToDatetime(UTC) == PUBLISHED
    assert list(mention.campaign_ids) == ["plastics-2026", "oceans-2026"]
    assert envelope.event_id == mention.mention_id
    assert envelope.event_type == "legation.events.v1.Mention"
    assert envelope.source_service == "listener"
    assert envelope.campaign_id == "plastics-2026"
    assert envelope.issue_id == "plastics-treaty"
    assert envelope.occurred_at.ToDatetime(UTC) == PUBLISHED
    assert envelope.observed_at.ToDatetime(UTC) == OBSERVED
    assert envelope.trace_id
    EventCodec.validate(default_catalog().topic("legation.listen.mentions.v1"), envelope)


def test_replay_builds_the_same_event() -> None:
    items = [item("g1", "Plastics treaty talks")]
    first = mentions_for(ISSUE, FEED, items, OBSERVED)[0]
    second = mentions_for(ISSUE, FEED, items, OBSERVED)[0]
    assert first.event_id == second.event_id
    assert first.mention == second.mention


def test_issue_without_campaign_gives_empty_campaign_id() -> None:
    issue = listen_pb2.TrackedIssue(issue_id="solo", keywords=["treaty"], feeds=[FEED])
    [envelope] = mentions_for(issue, FEED, [item("g1", "The treaty")], OBSERVED)
    assert envelope.campaign_id == ""
    assert list(envelope.mention.campaign_ids) == []
