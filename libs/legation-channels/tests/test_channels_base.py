"""The shared message checks every channel applies before delivering."""

from __future__ import annotations

from legation_channels.base import ChannelLimits, Media, Outgoing, problems

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
