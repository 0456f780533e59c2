"""Derived topics: a pseudonymised mention keeps nothing that names its author."""

from __future__ import annotations

import json

import pytest

from legation_core.catalog import CatalogError, default_catalog
from legation_core.codec import Envelope, envelope_from_json, envelope_to_dict
from legation_core.disclosure import Pseudonymiser, derive, personal_values, scrub_text

MENTIONS = "legation.listen.mentions.v1"
DERIVED = "legation.listen.mentions-pseudonymised.v1"
KEY = b"k" * 32


def mastodon_mention(author: str = "Alice Example", handle: str = "alice") -> Envelope:
    envelope = envelope_from_json(default_catalog().topic(MENTIONS).example)
    mention = envelope.mention
    mention.source = "mastodon"
    mention.source_url = f"https://mastodon.example/@{handle}"
    mention.author = author
    mention.author_id = f"https://mastodon.example/@{handle}"
    mention.item_id = "at://did:plc:abc123/app.bsky.feed.post/1"
    mention.url = f"https://mastodon.example/@{handle}/1234"
    mention.text = f"Hi @Bob@social.example and @{handle}, {author} here. u/carol agrees"
    mention.title = f"{author} on the treaty"
    mention.mentioned_accounts.extend(["bob@social.example"])
    mention.links.append("https://social.example/@bob")
    mention.in_reply_to = f"https://mastodon.example/@{handle}/1000"
    mention.thread_id = f"https://mastodon.example/@{handle}/1000"
    return envelope


def all_text(envelope: Envelope) -> str:
    return json.dumps(envelope_to_dict(envelope), ensure_ascii=False).lower()


def test_a_pseudonymised_mention_carries_no_raw_name_or_handle() -> None:
    spec = default_catalog().topic(DERIVED)
    source = mastodon_mention()
    derived = derive(spec, source, Pseudonymiser(KEY))
    raw = personal_values(source.mention)
    assert {"alice example", "alice", "bob@social.example", "carol"} <= raw
    text = all_text(derived)
    assert [value for value in raw if value in text] == []
    assert "mastodon.example" not in text
    # Everything that is not personal is kept, and the event is the same event.
    assert derived.event_id == source.event_id
    assert derived.mention.mention_id == source.mention.mention_id
    assert derived.mention.sentiment == source.mention.sentiment
    assert list(derived.mention.matched_keywords) == list(source.mention.matched_keywords)
    assert derived.mention.text.endswith("here. " + derived.mention.text.split()[-2] + " agrees")
    assert not derived.mention.url and not derived.mention.links


def test_the_same_author_has_the_same_pseudonym_and_another_author_another() -> None:
    spec = default_catalog().topic(DERIVED)
    pseudonym = Pseudonymiser(KEY)
    first = derive(spec, mastodon_mention(), pseudonym).mention
    again = derive(spec, mastodon_mention(), Pseudonymiser(KEY)).mention
    other = derive(spec, mastodon_mention("Dan", "dan"), pseudonym).mention
    assert first.author == first.author_id == again.author
    assert first.author.startswith("p-") and len(first.author) == 18
    assert other.author != first.author
    # In the text the author is the same pseudonym as in the author fields.
    assert first.author in first.text and first.author in first.title
    assert list(first.mentioned_accounts) == [pseudonym("bob@social.example")]
    assert pseudonym("@Bob@social.example") == pseudonym("bob@social.example")
    # Another key, other pseudonyms: nobody can test a guess without the platform's key.
    assert derive(spec, mastodon_mention(), Pseudonymiser(b"x" * 32)).mention.author != (
        first.author
    )


def test_a_feed_keeps_its_links_and_an_account_does_not() -> None:
    spec = default_catalog().topic(DERIVED)
    rss = envelope_from_json(default_catalog().topic(MENTIONS).example)
    derived = derive(spec, rss, Pseudonymiser(KEY)).mention
    assert derived.url == rss.mention.url
    assert derived.source_url == rss.mention.source_url
    assert derived.author.startswith("p-")


def test_a_pseudonym_in_the_text_is_never_rewritten() -> None:
    pseudonym = Pseudonymiser(KEY)
    once = scrub_text("@ana1 and ana1", [("ana1", True)], pseudonym, pseudonym("ana1"))
    assert once == f"{pseudonym('ana1')} and {pseudonym('ana1')}"
    assert scrub_text(once, [], pseudonym, "") == once


def test_keys_and_topics_are_checked() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Pseudonymiser(b"short")
    with pytest.raises(CatalogError, match="not a derived topic"):
        derive(default_catalog().topic(MENTIONS), mastodon_mention(), Pseudonymiser(KEY))
