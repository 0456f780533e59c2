"""The shared message checks every channel applies before delivering."""

from __future__ import annotations

from legation_channels.base import (
    ChannelLimits,
    Media,
    Outgoing,
    problems,
    text_length,
    text_with_link,
)

SHORT = ChannelLimits(
    max_text_length=10, max_media=1, media_kinds=frozenset({"image"}), alt_text_required=True
)


def test_a_message_that_fits_has_no_problems() -> None:
    message = Outgoing("k1", "hello", media=(Media("https://x/a.png", "image", "a map"),))
    assert problems(message, SHORT) == []


def test_every_problem_names_its_field() -> None:
    message = Outgoing(
        "",
        "far too long for it",
        media=(Media("https://x/a.mp4", "video"), Media("https://x/b.png", "image")),
        in_reply_to="123",
    )
    fields = [p.field for p in problems(message, SHORT)]
    assert fields == [
        "idempotency_key",
        "text",
        "media",
        "media[0].kind",
        "media[0].alt_text",
        "media[1].alt_text",
        "in_reply_to",
    ]
    assert "at most 10" in str(problems(message, SHORT)[1])


def test_graphemes_are_counted_as_the_channel_counts_them() -> None:
    limits = ChannelLimits(max_text_length=3, count_graphemes=True)
    # A family emoji is several code points but one grapheme; "é" as e + combining accent.
    assert problems(Outgoing("k", "👨‍👩‍👧e\u0301!"), limits) == []
    too_long = problems(Outgoing("k", "abcd"), limits)
    assert [str(p) for p in too_long] == ["text is 4 graphemes; this channel takes at most 3"]


def test_a_link_the_channel_appends_counts_at_its_fixed_url_length() -> None:
    limits = ChannelLimits(max_text_length=30, link_in_text=True, url_length=23)
    link = "https://example.org/" + "x" * 80
    assert problems(Outgoing("k", "12345", link=link), limits) == []
    assert text_with_link(Outgoing("k", "12345", link=link)) == f"12345\n\n{link}"
    found = problems(Outgoing("k", "123456", link=link), limits)
    assert [str(p) for p in found] == [
        "text is 31 characters with its link; this channel takes at most 30"
    ]
    # A link already in the text is not added twice.
    assert text_length(Outgoing("k", f"see {link}", link=link), limits) == 4 + len(link)


def test_a_caption_limit_applies_when_media_are_attached() -> None:
    limits = ChannelLimits(
        max_text_length=10, max_caption_length=4, max_media=1, media_kinds=frozenset({"image"})
    )
    assert problems(Outgoing("k", "hello"), limits) == []
    with_photo = Outgoing("k", "hello", media=(Media("https://x/a.png", "image", "map"),))
    assert [str(p) for p in problems(with_photo, limits)] == [
        "text is 5 characters; this channel takes at most 4 with media"
    ]
