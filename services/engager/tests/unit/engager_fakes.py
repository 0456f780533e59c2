"""Test doubles and fixtures shared by the engager's unit tests: a recording producer, the
rules file the inbox tests use, mentions and the handler run over them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from legation.events.v1 import listen_pb2
from legation_core.codec import make_envelope
from legation_core.consumer import Incoming
from legation_engager.adapters.events import MentionHandler
from legation_engager.adapters.store import EngagerState
from legation_engager.domain.rules import parse_rules

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
RULES = parse_rules(
    {
        "open": {
            "our_accounts": ["@embassy"],
            "our_urls": ["https://ministry.example/"],
            "min_influence": 0.8,
            "negative_turn": -0.6,
        },
        "sla": {"urgent": 600, "high": 3600},
        "labels": [
            {"label": "press", "when": {"min_influence": 0.7}},
            {"label": "hostile", "when": {"stances": ["against"]}},
        ],
        "assignment": [
            {"when": {"languages": ["fr"]}, "officer": "claire", "team": "francophone"},
            {"when": {"min_priority": "high"}, "team": "duty-desk"},
        ],
        "saved_replies": [
            {
                "id": "visa-info",
                "title": "Visa information",
                "variants": {
                    "en": "Dear {author}, visas are at {link}. {officer}",
                    "fr": "Bonjour {author}, les visas sont sur {link}. {officer}",
                },
            }
        ],
    }
)


def mention(
    mention_id: str = "m-1", text: str = "When does the consulate open?", **fields: Any
) -> listen_pb2.Mention:
    """A mention from a citizen's Mastodon post five minutes before NOW; ``fields`` override."""
    values: dict[str, Any] = {
        "mention_id": mention_id,
        "source": "mastodon",
        "source_url": "https://social.example/@citizen",
        "item_id": f"item-{mention_id}",
        "url": f"https://social.example/posts/{mention_id}",
        "thread_id": f"item-{mention_id}",
        "author": "@citizen",
        "text": text,
        "language": "en",
    }
    values.update(fields)
    result = listen_pb2.Mention(**values)
    result.published_at.FromDatetime(NOW - timedelta(minutes=5))
    return result


def incoming(m: listen_pb2.Mention, offset: int = 0) -> Incoming:
    """``m`` as the consumer loop hands it to a handler."""
    envelope = make_envelope(
        m,
        event_id=m.mention_id,
        source_service="listener",
        occurred_at=NOW - timedelta(minutes=5),
        campaign_id="camp-1",
        issue_id="issue-1",
    )
    return Incoming("legation.listen.mentions.v1", 0, offset, None, envelope)


def handle(state: EngagerState, mentions: Sequence[listen_pb2.Mention]) -> None:
    """Runs ``mentions`` through the mention handler as one batch; none may be rejected."""
    result = MentionHandler(state, RULES, clock=lambda: NOW)(
        [incoming(m, i) for i, m in enumerate(mentions)]
    )
    assert not result.rejected
