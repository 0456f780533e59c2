"""Channel variants in the editor and on the post page: each text counted exactly as
legation_channels counts it for the channel, and the count said in words."""

from __future__ import annotations

from legation.publisher.v1 import publisher_service_pb2 as publisher_pb
from legation_channels.adapters.site_atom import LIMITS as SITE_LIMITS
from legation_channels.base import ChannelLimits, Media, Outgoing, problems, text_length
from legation_console.domain.views import channel_variants as views

MASTODON = ChannelLimits(
    max_text_length=500, max_media=4, media_kinds=frozenset({"image"}), url_length=23
)
BLUESKY = ChannelLimits(max_text_length=300, count_graphemes=True)
TELEGRAM = ChannelLimits(max_text_length=4096, max_caption_length=1024, max_media=1)


def info(
    name: str, kind: str, limits: ChannelLimits, short: int = 0, default: bool = False
) -> publisher_pb.ChannelInfo:
    """What the publisher's ListChannels answers for ``limits`` (as its channel_info)."""
    message = publisher_pb.ChannelLimits(
        max_media=limits.max_media,
        media_kinds=sorted(limits.media_kinds),
        count_graphemes=limits.count_graphemes,
        link_in_text=limits.link_in_text,
        alt_text_required=limits.alt_text_required,
    )
    for field in ("max_text_length", "max_title_length", "url_length", "max_caption_length"):
        value = getattr(limits, field)
        if value is not None:
            setattr(message, field, value)
    return publisher_pb.ChannelInfo(
        name=name, kind=kind, limits=message, short_link_length=short, default=default
    )


def test_limits_round_trip_through_the_api() -> None:
    for limits in (MASTODON, BLUESKY, TELEGRAM, SITE_LIMITS):
        assert views.limits_from(info("c", "k", limits).limits) == limits


def test_counts_equal_legation_channels_own() -> None:
    text = "Family 👨‍👩‍👧 café " * 30
    for limits in (MASTODON, BLUESKY, TELEGRAM):
        count = views.channel_count(info("c", "k", limits), text)
        assert count.length == text_length(Outgoing("k", text), limits)
        over = any(p.field == "text" for p in problems(Outgoing("k", text), limits))
        assert count.over is over


def test_an_over_long_text_says_by_how_much_and_a_short_one_what_is_left() -> None:
    over = views.channel_count(info("mastodon-main", "mastodon", MASTODON), "a" * 512)
    assert over.summary == "12 characters over the mastodon-main limit of 500"
    assert over.over
    fits = views.channel_count(info("mastodon-main", "mastodon", MASTODON), "a" * 488)
    assert fits.summary == "488 of 500 characters"
    assert not fits.over
    one = views.channel_count(info("mastodon-main", "mastodon", MASTODON), "a" * 501)
    assert one.summary == "1 character over the mastodon-main limit of 500"
    free = views.channel_count(info("site-atom", "site-atom", SITE_LIMITS), "abc")
    assert free.summary == "3 characters, no limit on site-atom"
    assert (fits.limit_words, free.limit_words) == ("500 characters", "")


def test_graphemes_links_as_short_links_and_captions_count_as_delivered() -> None:
    family = "👨‍👩‍👧"  # one grapheme, five code points
    bluesky = views.channel_count(info("bsky", "bluesky", BLUESKY), family * 3)
    assert bluesky.length == 3
    assert bluesky.summary == "3 of 300 graphemes"
    assert bluesky.limit_words == "300 graphemes"
    # A 60-character link counts as the channel's 41-character short link.
    text = "Read it: https://ministry.example/" + "p" * 26
    linked = views.channel_count(info("m", "mastodon", MASTODON, short=41), text)
    assert linked.length == len("Read it: ") + 41
    # With an image, Telegram's caption limit applies.
    image = (Media("https://ministry.example/i.png", "image", "alt"),)
    caption = views.channel_count(info("tg", "telegram", TELEGRAM), "a" * 1100, media=image)
    assert caption.limit == 1024 and caption.over
    assert caption.length == text_length(Outgoing("k", "a" * 1100, media=image), TELEGRAM)


def test_a_channel_gets_its_own_text_else_the_body() -> None:
    channels = [
        info("site-atom", "site-atom", SITE_LIMITS, default=True),
        info("sms", "webhook", ChannelLimits(max_text_length=40)),
    ]
    counts = views.editor_counts(channels, "b" * 50, {"sms": "short"}, None)
    assert [(c.channel, c.length, c.selected, c.own_text) for c in counts] == [
        ("site-atom", 50, True, ""),
        ("sms", 5, False, "short"),
    ]
    chosen = views.editor_counts(channels, "b" * 50, {}, ["sms"])
    assert [c.selected for c in chosen] == [False, True]
    assert chosen[1].summary == "10 characters over the sms limit of 40"
    assert chosen[1].field == "variant_sms"


def test_the_post_page_shows_the_post_s_channels_only() -> None:
    channels = [
        info("site-atom", "site-atom", SITE_LIMITS),
        info("sms", "webhook", ChannelLimits(max_text_length=40)),
    ]
    counts = views.post_counts(channels, ["sms", "gone"], "body", [("sms", "own text")])
    assert [(c.channel, c.own_text, c.summary) for c in counts] == [
        ("sms", "own text", "8 of 40 characters")
    ]


def test_a_publisher_error_on_a_channel_variant_names_its_field() -> None:
    detail = "content.channel_variants[1].text is 600 characters; this channel takes at most 500"
    assert views.error_field(detail, ["site-atom", "mastodon-main"]) == "variant_mastodon-main"
    assert views.error_field("content.title is required", ["sms"]) is None
    assert views.error_field(detail, ["sms"]) is None
