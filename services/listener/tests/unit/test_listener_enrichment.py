"""Enrichment: language detection, sentiment labels, and the plain text they read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from legation_listener.domain.enrichment import (
    detect_language,
    normalise_language_tag,
    sentiment,
    sentiment_label,
)
from legation_listener.domain.items import (
    FeedItem,
    choose_language,
    html_to_text,
    make_feed_item,
)

FETCHED = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The negotiators met again this week to discuss the future of the treaty.", "en"),
        ("Les négociateurs se sont retrouvés cette semaine pour parler du traité.", "fr"),
        ("Los negociadores se reunieron esta semana para hablar del futuro del tratado.", "es"),
    ],
)
def test_detects_the_language_of_full_sentences(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_detection_is_deterministic() -> None:
    text = "Die Verhandlungen über das Abkommen gehen in Nairobi weiter."
    assert {detect_language(text) for _ in range(5)} == {"de"}


@pytest.mark.parametrize("text", ["", "Hi", "treaty talks", "12345 67890 !!!"])
def test_too_little_text_is_undetermined(text: str) -> None:
    assert detect_language(text) == "und"


def test_english_sentiment_uses_vader() -> None:
    positive = sentiment("This treaty is a wonderful, hopeful success for everyone.", "en")
    negative = sentiment("The talks were a terrible, shameful failure.", "en-GB")
    neutral = sentiment("The talks resume on Tuesday in Nairobi.", "en")
    assert (positive.value, positive.model, positive.model_version) == (
        "positive",
        "vader",
        "3.3.2",
    )
    assert positive.score >= 0.05
    assert negative.value == "negative"
    assert negative.score <= -0.05
    assert neutral.value == "neutral"
    assert -0.05 < neutral.score < 0.05


def test_other_languages_get_unknown_sentiment_rather_than_a_guess() -> None:
    label = sentiment("Ce traité est une merveilleuse réussite.", "fr")
    assert (label.value, label.score, label.model) == ("unknown", 0.0, "none")


@pytest.mark.parametrize(
    ("score", "value"),
    [(0.05, "positive"), (0.049, "neutral"), (-0.049, "neutral"), (-0.05, "negative")],
)
def test_vader_thresholds(score: float, value: str) -> None:
    assert sentiment_label(score) == value


@pytest.mark.parametrize(
    ("tag", "normalised"),
    [("en-us", "en-US"), ("EN", "en"), ("zh_cn", "zh-CN"), ("sr-latn-rs", "sr-Latn-RS"),
     ("", "und"), ("not a tag", "und")],
)  # fmt: skip
def test_language_tags_are_normalised(tag: str, normalised: str) -> None:
    assert normalise_language_tag(tag) == normalised


def test_html_becomes_plain_text() -> None:
    markup = (
        "<p>Plastics&nbsp;treaty <b>talks</b></p><p>resume</p>"
        "<script>alert('x')</script><style>p{}</style>\n\n<ul><li>one</li><li>two</li></ul>"
    )
    assert html_to_text(markup) == "Plastics treaty talks resume one two"
    assert html_to_text("  AT&amp;T   plain\ttext ") == "AT&T plain text"


def raw_item(
    title: str = "Talks",
    body: str = "",
    published_at: datetime | None = None,
    declared_language: str = "",
    feed_language: str = "",
    item_id: str = "g1",
) -> FeedItem:
    return make_feed_item(
        item_id=item_id,
        url="https://x.org/1",
        title=title,
        body=body,
        author=" A.  Reporter ",
        published_at=published_at,
        declared_language=declared_language,
        feed_language=feed_language,
        fetched_at=FETCHED,
    )


FRENCH = "Les négociateurs se sont retrouvés cette semaine pour parler du traité."
ENGLISH = "The negotiators met again this week to discuss the future of the treaty."


def test_an_entry_declared_language_wins() -> None:
    assert choose_language(FRENCH, declared="es", feed_default="en") == "es"


def test_the_text_beats_the_feed_declaration() -> None:
    # A feed declared English often carries items in other languages.
    assert choose_language(FRENCH, feed_default="en") == "fr"


def test_the_feed_declaration_is_kept_when_the_text_agrees_or_cannot_tell() -> None:
    assert choose_language(ENGLISH, feed_default="en-gb") == "en-GB"
    assert choose_language("Short", feed_default="fr") == "fr"
    assert choose_language("Short") == "und"


def test_feed_item_strips_html_and_falls_back_to_the_fetch_time() -> None:
    item = raw_item(title="<b>Talks</b>", body=f"<p>{FRENCH}</p>", feed_language="en")
    assert item.title == "Talks"
    assert item.text == FRENCH
    assert item.author == "A. Reporter"
    assert item.language == "fr"
    assert item.published_at == FETCHED
    published = datetime(2026, 11, 19, tzinfo=UTC)
    assert raw_item(published_at=published).published_at == published


def test_feed_item_rejects_naive_times_and_missing_ids() -> None:
    with pytest.raises(ValueError, match="item_id"):
        raw_item(item_id="")
    with pytest.raises(ValueError, match="timezone"):
        raw_item(published_at=datetime(2026, 1, 1))  # a naive time on purpose
