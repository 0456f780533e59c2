"""Channel variants: a post's text per channel, counted exactly as the channel will get it.

No I/O. The counting is ``legation_channels.base.text_length`` (the function the adapters
and the publisher's own check use) on the message the channel would get: the channel's own
text or the variant's body, links as the publisher's short links, the media attached; the
limits are the ones ``ListChannels`` reports for each channel's adapter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2 as publisher_pb
from legation_channels.base import (
    ChannelLimits,
    Media,
    MediaKind,
    Outgoing,
    text_length,
    with_short_links,
)
from legation_console.domain.formatting import count

MEDIA_KINDS = ("image", "video", "document")


def limits_from(info: publisher_pb.ChannelLimits) -> ChannelLimits:
    """The channel contract's limits for what ``ListChannels`` answered."""

    kinds = frozenset(cast(MediaKind, k) for k in info.media_kinds if k in MEDIA_KINDS)
    return ChannelLimits(
        max_text_length=info.max_text_length if info.HasField("max_text_length") else None,
        max_title_length=info.max_title_length if info.HasField("max_title_length") else None,
        max_media=info.max_media,
        media_kinds=kinds,
        alt_text_required=info.alt_text_required,
        supports_replies=info.supports_replies,
        count_graphemes=info.count_graphemes,
        link_in_text=info.link_in_text,
        url_length=info.url_length if info.HasField("url_length") else None,
        max_caption_length=info.max_caption_length if info.HasField("max_caption_length") else None,
    )


@dataclass(frozen=True)
class ChannelCount:
    """One channel's variant in the editor or on the post page, with its count."""

    channel: str
    kind: str
    # What the editor wrote for this channel only (empty: the variant's text goes).
    own_text: str
    length: int
    limit: int | None
    over: bool
    # The count as words: "488 of 500 characters", "12 characters over the sms limit of 40".
    summary: str
    selected: bool = False
    # The limit with its unit ("500 characters", "300 graphemes"); "" without a limit.
    limit_words: str = ""

    @property
    def field(self) -> str:
        """The editor's form field of this channel's own text."""
        return f"variant_{self.channel}"


def channel_count(
    info: publisher_pb.ChannelInfo,
    body: str,
    own_text: str = "",
    media: Sequence[Media] = (),
    selected: bool = False,
) -> ChannelCount:
    """``info``'s channel with the text it gets (``own_text``, else ``body``) counted as
    delivered: links as short links of the channel's length, graphemes where the channel
    counts them, the link appended where the adapter appends it, the caption limit with
    media."""
    limits = limits_from(info.limits)
    text = own_text if own_text.strip() else body
    message = Outgoing(
        idempotency_key="count",
        text=with_short_links(text, info.short_link_length),
        media=tuple(media),
    )
    length = text_length(message, limits)
    most = limits.max_caption_length if media else None
    if most is None:
        most = limits.max_text_length
    unit = "grapheme" if limits.count_graphemes else "character"
    if most is None:
        summary = f"{count(length, unit)}, no limit on {info.name}"
    elif length > most:
        summary = f"{count(length - most, unit)} over the {info.name} limit of {most:,}"
    else:
        summary = f"{length:,} of {count(most, unit)}"
    return ChannelCount(
        channel=info.name,
        kind=info.kind,
        own_text=own_text,
        length=length,
        limit=most,
        over=most is not None and length > most,
        summary=summary,
        selected=selected,
        limit_words=count(most, unit) if most is not None else "",
    )


def editor_counts(
    channels: Sequence[publisher_pb.ChannelInfo],
    body: str,
    own_texts: Mapping[str, str],
    chosen: Sequence[str] | None,
    media: Sequence[Media] = (),
) -> tuple[ChannelCount, ...]:
    """Every configured channel in the editor: its own text, its count, and whether the
    post goes there (``chosen``; None: the defaults)."""
    return tuple(
        channel_count(
            info,
            body,
            own_texts.get(info.name, ""),
            media,
            selected=info.default if chosen is None else info.name in chosen,
        )
        for info in channels
    )


def image(url: str, alt_text: str) -> tuple[Media, ...]:
    """The editor's optional image as the channel contract's media."""
    return (Media(url=url, kind="image", alt_text=alt_text),) if url.strip() else ()


def post_counts(
    channels: Sequence[publisher_pb.ChannelInfo],
    post_channels: Sequence[str],
    body: str,
    variants: Sequence[tuple[str, str]],
    media: Sequence[Media] = (),
) -> tuple[ChannelCount, ...]:
    """A language variant's channel variants on the post page: one per channel the post
    goes to (``variants``: channel, own text), counted as delivered; a channel the
    publisher no longer lists is left out."""
    own = dict(variants)
    by_name = {info.name: info for info in channels}
    return tuple(
        channel_count(by_name[name], body, own.get(name, ""), media, selected=True)
        for name in post_channels
        if name in by_name
    )


def media_of(refs: Iterable[publish_pb2.MediaRef]) -> tuple[Media, ...]:
    """A variant's media as the channel contract's (unknown kinds left out)."""
    return tuple(
        Media(url=ref.url, kind=cast(MediaKind, ref.kind), alt_text=ref.alt_text)
        for ref in refs
        if ref.kind in MEDIA_KINDS
    )


_VARIANT_FIELD = re.compile(r"^content\.channel_variants\[(\d+)\]\.")


def error_field(detail: str, sent: Sequence[str]) -> str | None:
    """The editor's field of a publisher error about ``content.channel_variants[i]``
    (``sent``: the channels of the variants in the order they were sent), else None."""
    matched = _VARIANT_FIELD.match(detail)
    if matched is None or int(matched.group(1)) >= len(sent):
        return None
    return f"variant_{sent[int(matched.group(1))]}"
