"""Mentions: items that match a tracked issue, enriched, in the envelope they travel in."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from legation.events.v1 import listen_pb2
from legation_core.codec import Envelope, make_envelope
from legation_core.ids import stable_id
from legation_listener.domain.duplicates import DuplicateIndex
from legation_listener.domain.enrichment import enrich_mention
from legation_listener.domain.items import FeedItem
from legation_listener.domain.matching import match_issue
from legation_listener.domain.query import QueryItem, parse_query

SERVICE = "listener"


def mention_id_for(issue_id: str, item_id: str) -> str:
    """One item gives one mention per issue, however often it is read."""
    return stable_id("mention", issue_id, item_id)


def query_item(item: FeedItem, feed: str) -> QueryItem:
    """What a query sees of a feed item."""
    return QueryItem(
        title=item.title,
        text=item.text,
        language=item.language,
        source=item.source,
        feed=feed,
        author=item.author,
        url=item.url,
    )


def matched_terms(issue: listen_pb2.TrackedIssue, feed: str, item: FeedItem) -> list[str]:
    """What of the issue the item contains (empty: no match): the query's terms when the
    issue has a query, else its keywords."""
    if issue.query:
        return parse_query(issue.query).matches(query_item(item, feed))
    return match_issue(issue, item.title, item.text)


def build_mention(
    issue: listen_pb2.TrackedIssue,
    feed: str,
    item: FeedItem,
    matched: Sequence[str],
    label: listen_pb2.Label,
) -> listen_pb2.Mention:
    """The Mention of ``item`` for ``issue`` (``matched``: the keywords or query terms it
    contains)."""
    mention = listen_pb2.Mention(
        mention_id=mention_id_for(issue.issue_id, item.item_id),
        source=item.source,
        source_url=feed,
        item_id=item.item_id,
        url=item.url,
        author=item.author,
        title=item.title,
        text=item.text,
        language=item.language,
        sentiment=label,
        reach=item.reach,
        matched_keywords=list(matched),
        campaign_ids=list(issue.campaign_ids),
        author_id=item.author_id,
        in_reply_to=item.in_reply_to,
        thread_id=item.thread_id,
    )
    mention.published_at.FromDatetime(item.published_at)
    return mention


def mention_envelope(
    issue: listen_pb2.TrackedIssue,
    mention: listen_pb2.Mention,
    occurred_at: datetime,
    observed_at: datetime | None = None,
) -> Envelope:
    """The envelope of a mention: its id is the mention id, so a replay is recognisable."""
    return make_envelope(
        mention,
        event_id=mention.mention_id,
        source_service=SERVICE,
        occurred_at=occurred_at,
        campaign_id=issue.campaign_ids[0] if issue.campaign_ids else "",
        issue_id=issue.issue_id,
        observed_at=observed_at,
    )


def mentions_for(
    issue: listen_pb2.TrackedIssue,
    feed: str,
    items: Sequence[FeedItem],
    observed_at: datetime | None = None,
    duplicates: DuplicateIndex | None = None,
) -> list[Envelope]:
    """The mention envelopes of the ``items`` that match ``issue``, enriched (see
    :func:`~legation_listener.domain.enrichment.enrich_mention`; ``duplicates``: the index
    copies are looked up in, the process's shared one by default); items that do not match
    give nothing."""
    envelopes: list[Envelope] = []
    for item in items:
        matched = matched_terms(issue, feed, item)
        if not matched:
            continue
        mention = build_mention(issue, feed, item, matched, listen_pb2.Label())
        enrich_mention(mention, issue, duplicates)
        envelopes.append(mention_envelope(issue, mention, item.published_at, observed_at))
    return envelopes
