"""The publisher's rules: what a valid post is, and the ids and fields of its publication."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from legation.publisher.v1.publisher_service_pb2 import CreatePostRequest
from legation_core.catalog import default_catalog
from legation_core.codec import EventCodec
from legation_core.ids import stable_id
from legation_publisher.domain.posts import (
    PUBLICATIONS_TOPIC,
    ChannelResult,
    InvalidPost,
    Post,
    build_publication,
    is_language_tag,
    post_id_for,
    publication_envelope,
    publication_id_for,
    validate_create_post,
)


def request(**overrides: str) -> CreatePostRequest:
    fields = {
        "request_id": "req-1",
        "campaign_id": "plastics-2026",
        "title": "Our position on the plastics treaty",
        "body": "We support a binding cap on plastic production.",
        "language": "en",
        "author": "Press office",
        "issue_id": "plastics-treaty",
    }
    fields.update(overrides)
    return CreatePostRequest(**fields)


@pytest.mark.parametrize("field", ["request_id", "campaign_id", "title", "body"])
@pytest.mark.parametrize("empty", ["", "   "])
def test_a_missing_required_field_is_named(field: str, empty: str) -> None:
    with pytest.raises(InvalidPost, match=rf"^{field} is required") as caught:
        validate_create_post(request(**{field: empty}))
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)


def test_title_may_have_300_characters_but_not_301() -> None:
    assert validate_create_post(request(title="t" * 300)).post.title == "t" * 300
    with pytest.raises(InvalidPost, match=r"^title is longer than 300"):
        validate_create_post(request(title="t" * 301))


@pytest.mark.parametrize("tag", ["en", "fr", "es-MX", "zh-Hant-TW", "es-419", "EN-gb", "sl-rozaj"])
def test_plausible_language_tags_pass(tag: str) -> None:
    assert validate_create_post(request(language=tag)).post.language == tag


@pytest.mark.parametrize("tag", ["english", "en_US", "e", "en-", "fr-FRANCE1234", "fr--FR", "123"])
def test_implausible_language_tags_are_rejected_naming_the_field(tag: str) -> None:
    assert not is_language_tag(tag)
    with pytest.raises(InvalidPost, match=r"^language ") as caught:
        validate_create_post(request(language=tag))
    assert caught.value.field == "language"


def test_language_defaults_to_english() -> None:
    assert validate_create_post(request(language="")).post.language == "en"


@pytest.mark.parametrize("field", ["title", "body", "author"])
def test_characters_xml_cannot_carry_are_rejected(field: str) -> None:
    with pytest.raises(InvalidPost, match=f"^{field} contains the control character U\\+0007"):
        validate_create_post(request(**{field: "bell \x07"}))


def test_a_valid_request_gives_the_post_and_its_campaign() -> None:
    order = validate_create_post(request(title="  Spaced title  "))
    assert order.post == Post(
        post_id=post_id_for("req-1"),
        title="Spaced title",
        body="We support a binding cap on plastic production.",
        language="en",
        author="Press office",
    )
    assert (order.campaign_id, order.issue_id) == ("plastics-2026", "plastics-treaty")


def test_ids_are_deterministic() -> None:
    assert post_id_for("req-1") == post_id_for("req-1") == stable_id("post", "req-1")
    assert post_id_for("req-1") != post_id_for("req-2")
    post_id = post_id_for("req-1")
    site = publication_id_for(post_id, "site-atom")
    assert site == stable_id("publication", post_id, "site-atom")
    assert site != publication_id_for(post_id, "mastodon")


def test_publication_and_envelope_fields() -> None:
    post = validate_create_post(request()).post
    published_at = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    result = ChannelResult(
        channel_item_id=f"urn:uuid:{post.post_id}",
        url=f"https://ministry.example/news/{post.post_id}",
        published_at=published_at,
        newly_published=True,
        post=post,
    )
    publication = build_publication("site-atom", result)
    assert publication.publication_id == stable_id("publication", post.post_id, "site-atom")
    assert publication.post_id == post.post_id
    assert publication.channel == "site-atom"
    assert publication.channel_item_id == f"urn:uuid:{post.post_id}"
    assert publication.url == f"https://ministry.example/news/{post.post_id}"
    assert (publication.title, publication.body) == (post.title, post.body)
    assert (publication.language, publication.author) == ("en", "Press office")
    assert publication.published_at.ToDatetime(tzinfo=UTC) == published_at

    envelope = publication_envelope(publication, "plastics-2026", "plastics-treaty")
    assert envelope.event_id == publication.publication_id
    assert envelope.source_service == "publisher"
    assert envelope.campaign_id == "plastics-2026"
    assert envelope.issue_id == "plastics-treaty"
    assert envelope.occurred_at.ToDatetime(tzinfo=UTC) == published_at
    assert envelope.publication == publication
    # The topic's contract accepts it, exactly as the producer will check.
    EventCodec.validate(default_catalog().check_produce("publisher", PUBLICATIONS_TOPIC), envelope)
