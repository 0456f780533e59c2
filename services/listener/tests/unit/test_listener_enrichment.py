"""Enrichment: language, sentiment, stance, extraction, influence, duplicates, and the plain
text they read (the shipped models, no datasets needed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from legation.events.v1 import listen_pb2
from legation_listener.domain import enrichment
from legation_listener.domain.duplicates import DuplicateIndex
from legation_listener.domain.enrichment import (
    detect_language,
    enrich_mention,
    entities,
    hashtags,
    influence,
    language_detection,
    links,
    mentioned_accounts,
    normalise_language_tag,
    normalise_text,
    primary_language,
    sentiment,
    sentiment_languages,
    stance,
    stance_model,
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
        ("استئناف المفاوضات في جنيف اليوم", "ar"),
        ("Переговоры в Женеве возобновились сегодня", "ru"),
        ("日内瓦谈判今天恢复", "zh"),
        ("Die Verhandlungen gehen weiter", "de"),
    ],
)
def test_detects_the_language_of_short_posts(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_detection_label_names_the_detector_and_its_confidence() -> None:
    label = language_detection("Die Verhandlungen über das Abkommen gehen in Nairobi weiter.")
    assert (label.value, label.model) == ("de", "py3langid")
    assert label.model_version
    assert 0.5 <= label.score <= 1.0


def test_detection_is_deterministic() -> None:
    text = "Die Verhandlungen über das Abkommen gehen in Nairobi weiter."
    assert {detect_language(text) for _ in range(5)} == {"de"}


@pytest.mark.parametrize(
    "text", ["", "Hi", "treaty", "Hi there", "12345 67890 !!!", "@bob https://x.org/a #tag"]
)
def test_too_little_text_is_undetermined(text: str) -> None:
    assert detect_language(text) == "und"


def test_dialects_are_filed_under_their_macrolanguage() -> None:
    assert primary_language("arz") == "ar"
    assert primary_language("en-GB") == "en"


@pytest.mark.parametrize(
    ("text", "language", "value"),
    [
        ("This treaty is a wonderful, hopeful success for everyone! Love it", "en", "positive"),
        ("The talks were a terrible, shameful failure.", "en-GB", "negative"),
        ("Ce traité est une merveilleuse réussite, bravo !", "fr", "positive"),
        ("C'est une honte, un échec total et lamentable.", "fr", "negative"),
        ("¡Qué maravilla, me encanta este acuerdo!", "es", "positive"),
        ("Es una vergüenza, un desastre total.", "es", "negative"),
        ("هذا رائع جدا، أحب هذا الاتفاق", "ar", "positive"),
    ],
)
def test_sentiment_is_read_by_the_model_of_the_language(
    text: str, language: str, value: str
) -> None:
    label = sentiment(text, language)
    assert label.value == value
    assert label.model == f"legation-sentiment-{language[:2]}"
    assert label.model_version.startswith("1.")
    assert (label.score > 0) == (value == "positive")


@pytest.mark.parametrize(
    ("text", "language"), [("Это ужасно", "ru"), ("这个很好", "zh"), ("Bardzo dobrze", "pl")]
)
def test_languages_without_a_model_get_unknown_rather_than_a_guess(
    text: str, language: str
) -> None:
    assert sentiment(text, language) == listen_pb2.Label(value="unknown", model="none")


def test_a_model_unsure_of_its_answer_says_unknown_and_names_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(enrichment, "MIN_SENTIMENT_PROBABILITY", 0.99)
    label = sentiment("The talks resume on Tuesday in Nairobi.", "en")
    assert (label.value, label.model) == ("unknown", "legation-sentiment-en")


def test_every_required_language_has_an_answer_or_an_honest_unknown() -> None:
    assert {"ar", "en", "es", "fr"} <= set(sentiment_languages())
    assert "ru" not in sentiment_languages()
    assert "zh" not in sentiment_languages()


def test_stance_reads_english_toward_the_issue_terms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(enrichment, "MIN_STANCE_PROBABILITY", 0.0)
    label = stance("The plastics treaty is a scam. Stop it.", "en", ["plastics treaty"])
    assert label.value in {"favour", "against", "neutral"}
    assert (label.model, label.model_version[:2]) == ("legation-stance-en", "1.")
    assert stance("Le traité est une arnaque.", "fr", ["traité"]) == listen_pb2.Label(
        value="unknown", model="none"
    )


def test_stance_masks_the_target_whatever_it_is_called() -> None:
    # Two issues named differently, the same opinion: the model sees the same text.
    model = stance_model()
    assert model is not None
    first = model.probabilities("I oppose the plastics treaty", ["plastics treaty"])
    second = model.probabilities("I oppose the Paris accord", ["paris accord"])
    assert first == pytest.approx(second)


def test_hashtags_accounts_and_links() -> None:
    text = (
        "RT @alice: #PlasticsTreaty talks resume (see https://news.example.org/a?b=1). "
        "cc @bob@mastodon.social @carol.bsky.social #plasticstreaty #2026 mail me@x.org "
        "https://x.org/wiki/Talks_(2026)"
    )
    assert hashtags(text) == ["plasticstreaty"]
    assert mentioned_accounts(text) == ["@alice", "@bob@mastodon.social", "@carol.bsky.social"]
    assert links(text) == ["https://news.example.org/a?b=1", "https://x.org/wiki/Talks_(2026)"]


def test_named_entities_by_kind() -> None:
    text = (
        "Prime Minister Narendra Modi met President Macron in New Delhi on Tuesday. "
        "The United Nations and NATO welcomed it, and the Ministry of Foreign Affairs said "
        "the Plastics Treaty would follow."
    )
    assert [(e.text, e.kind) for e in entities(text)] == [
        ("Narendra Modi", "person"),
        ("Macron", "person"),
        ("New Delhi", "place"),
        ("United Nations", "organisation"),
        ("NATO", "organisation"),
        ("Ministry of Foreign Affairs", "organisation"),
        ("Plastics Treaty", "other"),
    ]
    assert entities("日内瓦谈判今天恢复") == []


def test_influence_grows_with_the_log_of_reach_and_halves_for_copies() -> None:
    assert influence(0) == 0.0
    assert influence(10_000_000) == 1.0
    assert influence(10**9) == 1.0
    assert influence(10_000) == pytest.approx(0.571, abs=0.001)
    assert influence(10_000, is_copy=True) == pytest.approx(influence(10_000) / 2)
    assert influence(100) < influence(10_000) < influence(1_000_000)


def test_normalised_text() -> None:
    assert normalise_text(" Cafe\u0301\u200b  talks\x07\n\tresume ") == "Café talks resume"


ISSUE = listen_pb2.TrackedIssue(
    issue_id="plastics", name="Plastics treaty", keywords=["plastics treaty", "plastic"]
)


def mention(mention_id: str, text: str, language: str = "", reach: int = 0) -> listen_pb2.Mention:
    built = listen_pb2.Mention(
        mention_id=mention_id,
        title="",
        text=text,
        language=language,
        reach=reach,
        matched_keywords=["plastics treaty"],
    )
    built.published_at.FromDatetime(FETCHED)
    return built


def test_enrich_mention_fills_every_field_with_its_model() -> None:
    enriched = enrich_mention(
        mention(
            "m1",
            "Wonderful news: @unep says the #PlasticsTreaty talks in Nairobi are a great "
            "success! https://unep.org/news",
            reach=10_000,
        ),
        ISSUE,
        DuplicateIndex(),
    )
    assert enriched.language == "en"
    assert enriched.language_detection.model == "py3langid"
    assert enriched.sentiment.value == "positive"
    assert enriched.sentiment.model == "legation-sentiment-en"
    assert enriched.stance.model in {"legation-stance-en", "none"}
    assert enriched.stance.value in {"favour", "against", "neutral", "unknown"}
    assert list(enriched.hashtags) == ["plasticstreaty"]
    assert list(enriched.mentioned_accounts) == ["@unep"]
    assert list(enriched.links) == ["https://unep.org/news"]
    assert ("Nairobi", "place") in [(e.text, e.kind) for e in enriched.entities]
    assert enriched.duplicate_of == ""
    assert enriched.influence == pytest.approx(influence(10_000))


def test_a_declared_language_stands_when_the_detector_disagrees() -> None:
    enriched = enrich_mention(
        mention("m1", "The talks resume on Tuesday in Nairobi.", "fr"), ISSUE, DuplicateIndex()
    )
    assert enriched.language == "fr"
    assert (enriched.language_detection.value, enriched.language_detection.model) == (
        "fr",
        "declared",
    )


STORY = (
    "Delegates from 170 countries resumed talks on a global plastics treaty in Nairobi on "
    "Monday, aiming to agree limits on production before the end of the year."
)


def test_reposts_and_syndicated_copies_link_to_the_first_seen_story() -> None:
    index = DuplicateIndex()
    original = enrich_mention(mention("m1", STORY, reach=100), ISSUE, index)
    repost = enrich_mention(mention("m2", f"RT @reuters: {STORY[:120]}…"), ISSUE, index)
    syndicated = enrich_mention(
        mention("m3", STORY.replace("Monday", "Monday morning") + " https://t.co/x"),
        ISSUE,
        index,
    )
    other = enrich_mention(mention("m4", "Whales are singing louder this year."), ISSUE, index)
    assert original.duplicate_of == ""
    assert repost.duplicate_of == "m1"
    assert syndicated.duplicate_of == "m1"
    assert other.duplicate_of == ""
    assert syndicated.influence == 0.0  # reach unknown


def test_duplicate_decisions_are_stable_per_issue_and_on_retry() -> None:
    index = DuplicateIndex()
    published = FETCHED
    assert index.check("a", "m1", STORY, published) == ""
    assert index.check("a", "m1", STORY, published) == ""  # a retried poll: not its own copy
    assert index.check("a", "m2", STORY, published) == "m1"
    assert index.check("a", "m2", STORY, published) == "m1"
    assert index.check("b", "m3", STORY, published) == ""  # another issue counts it anew


def test_short_and_empty_texts_are_never_copies() -> None:
    index = DuplicateIndex()
    for i in range(3):
        assert index.check("a", f"short{i}", "Great news!", FETCHED) == ""
        assert index.check("a", f"empty{i}", "", FETCHED) == ""
    assert len(index) == 0


def test_the_index_is_rebuilt_from_the_mentions_it_emitted() -> None:
    first = DuplicateIndex()
    emitted = [
        ("m1", STORY, first.check("a", "m1", STORY, FETCHED)),
        ("m2", "RT @x: " + STORY, first.check("a", "m2", "RT @x: " + STORY, FETCHED)),
    ]
    rebuilt = DuplicateIndex()
    for mention_id, text, duplicate_of in reversed(emitted):  # replay order does not matter
        rebuilt.observe("a", mention_id, text, FETCHED, duplicate_of)
    assert len(rebuilt) == 1
    assert rebuilt.check("a", "m3", STORY + " (updated)", FETCHED) == "m1"
    assert rebuilt.check("a", "m2", "anything", FETCHED) == "m1"


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
