"""A post's content: language variants, channel variants, media and tracked links.

No I/O. A post has a source variant in one language and translations linked to the variant
they were translated from; each variant can carry per-channel text, hashtags and media that
must fit the channel (:class:`legation_channels.base.ChannelLimits`). Links in a post's text
are rewritten, per channel, to short redirect links whose target carries UTM parameters, so
the evaluator can count clicks per post, language and channel.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from legation.events.v1 import publish_pb2
from legation.publisher.v1 import publisher_service_pb2
from legation_channels.base import LINK_IN_TEXT, ChannelLimits, Media, MediaKind, Outgoing, problems
from legation_core.ids import stable_id
from legation_publisher.domain.posts import (
    MAX_TITLE_LENGTH,
    InvalidPost,
    is_language_tag,
    xml_safe,
)

MEDIA_KINDS: tuple[MediaKind, ...] = ("image", "video", "document")
MAX_HASHTAGS = 30
_URL = LINK_IN_TEXT
_HASHTAG = re.compile(r"\w+")


@dataclass(frozen=True)
class ChannelProfile:
    """What the publisher knows of one configured channel: its kind and limits."""

    name: str
    kind: str
    limits: ChannelLimits
    # The short-link endpoint's public URL: links in a post go out as short links, so a
    # text is checked at the length it will have on the channel (empty: as written).
    redirect_base: str = ""


def short_link_length(profile: ChannelProfile) -> int:
    """How many characters a link in a post's text counts on ``profile``'s channel: the
    length of its short links (codes have a fixed length), 0 when links go as written."""
    if not profile.redirect_base:
        return 0
    return len(short_url(profile.redirect_base, "x" * SHORT_CODE_LENGTH))


def channel_info(profile: ChannelProfile, default: bool) -> publisher_service_pb2.ChannelInfo:
    """``profile`` as ``ListChannels`` answers it: name, kind and the adapter's limits."""
    limits = profile.limits
    return publisher_service_pb2.ChannelInfo(
        name=profile.name,
        kind=profile.kind,
        limits=publisher_service_pb2.ChannelLimits(
            max_text_length=limits.max_text_length,
            max_title_length=limits.max_title_length,
            max_media=limits.max_media,
            media_kinds=sorted(limits.media_kinds),
            alt_text_required=limits.alt_text_required,
            supports_replies=limits.supports_replies,
            count_graphemes=limits.count_graphemes,
            link_in_text=limits.link_in_text,
            url_length=limits.url_length,
            max_caption_length=limits.max_caption_length,
        ),
        short_link_length=short_link_length(profile),
        default=default,
    )


def media_from(refs: Iterable[publish_pb2.MediaRef]) -> tuple[Media, ...]:
    """The channel contract's media for the protobuf references (kinds already checked)."""
    return tuple(
        Media(
            url=ref.url,
            kind=cast(MediaKind, ref.kind),
            alt_text=ref.alt_text,
            mime_type=ref.mime_type,
        )
        for ref in refs
    )


def _check_media(field: str, refs: Sequence[publish_pb2.MediaRef]) -> None:
    for position, ref in enumerate(refs):
        where = f"{field}[{position}]"
        _check_url(f"{where}.url", ref.url)
        if ref.kind not in MEDIA_KINDS:
            raise InvalidPost(
                f"{where}.kind", f"must be one of {', '.join(MEDIA_KINDS)} (got {ref.kind!r})"
            )
        xml_safe(f"{where}.alt_text", ref.alt_text)


def _check_url(field: str, url: str) -> None:
    if not url.strip():
        raise InvalidPost(field, "is required")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidPost(field, f"must be an absolute http(s) URL (got {url!r})")


def validate_content(
    content: publisher_service_pb2.VariantContent,
    language: str,
    channels: Mapping[str, ChannelProfile],
    field: str = "content",
) -> publish_pb2.LanguageVariant:
    """The language variant ``content`` describes, checked against every channel the post
    goes to; raises :class:`InvalidPost` naming the field (``content.title``,
    ``content.channel_variants[0].text``, ``content.media[1].alt_text``)."""
    if not is_language_tag(language):
        raise InvalidPost(
            "language", f"{language!r} is not a BCP 47 language tag (for example en, fr, es-MX)"
        )
    title = xml_safe(f"{field}.title", content.title.strip())
    if not title:
        raise InvalidPost(f"{field}.title", "is required")
    if len(title) > MAX_TITLE_LENGTH:
        raise InvalidPost(
            f"{field}.title", f"is longer than {MAX_TITLE_LENGTH} characters ({len(title)})"
        )
    body = xml_safe(f"{field}.body", content.body)
    if not body.strip():
        raise InvalidPost(f"{field}.body", "is required")
    author = xml_safe(f"{field}.author", content.author.strip())
    _check_media(f"{field}.media", content.media)
    variant = publish_pb2.LanguageVariant(
        language=language,
        title=title,
        body=body,
        author=author,
        media=content.media,
        status=publish_pb2.POST_STATUS_DRAFT,
    )
    seen: set[str] = set()
    for position, channel_variant in enumerate(content.channel_variants):
        where = f"{field}.channel_variants[{position}]"
        if channel_variant.channel not in channels:
            raise InvalidPost(
                f"{where}.channel",
                f"{channel_variant.channel!r} is not one of the post's channels "
                f"({', '.join(sorted(channels))})",
            )
        if channel_variant.channel in seen:
            raise InvalidPost(f"{where}.channel", f"{channel_variant.channel!r} appears twice")
        seen.add(channel_variant.channel)
        xml_safe(f"{where}.text", channel_variant.text)
        if len(channel_variant.hashtags) > MAX_HASHTAGS:
            raise InvalidPost(f"{where}.hashtags", f"has more than {MAX_HASHTAGS} tags")
        for number, tag in enumerate(channel_variant.hashtags):
            if not _HASHTAG.fullmatch(tag.removeprefix("#")):
                raise InvalidPost(
                    f"{where}.hashtags[{number}]", f"{tag!r} is not a hashtag (letters, digits, _)"
                )
        _check_media(f"{where}.media", channel_variant.media)
        variant.channel_variants.append(channel_variant)
    for profile in channels.values():
        check_fits(variant, profile, field)
    return variant


def channel_variant(
    variant: publish_pb2.LanguageVariant, channel: str
) -> publish_pb2.ChannelVariant | None:
    """The variant's own text for ``channel``, or None."""
    return next((cv for cv in variant.channel_variants if cv.channel == channel), None)


def channel_text(variant: publish_pb2.LanguageVariant, channel: str) -> str:
    """The text ``channel`` gets: its own text (or the body) followed by its hashtags."""
    own = channel_variant(variant, channel)
    text = own.text if own is not None and own.text.strip() else variant.body
    tags = [f"#{tag.removeprefix('#')}" for tag in (own.hashtags if own is not None else [])]
    return f"{text} {' '.join(tags)}" if tags else text


def channel_media(
    variant: publish_pb2.LanguageVariant, channel: str
) -> Sequence[publish_pb2.MediaRef]:
    """The media ``channel`` gets: its own when it has some, else the variant's."""
    own = channel_variant(variant, channel)
    return own.media if own is not None and len(own.media) else variant.media


def check_fits(
    variant: publish_pb2.LanguageVariant, profile: ChannelProfile, field: str = "content"
) -> None:
    """Raises :class:`InvalidPost` naming the field when the variant, as ``profile``'s
    channel would get it, does not fit the channel's limits."""
    own = channel_variant(variant, profile.name)
    position = next(
        (i for i, cv in enumerate(variant.channel_variants) if cv.channel == profile.name), -1
    )
    written = channel_text(variant, profile.name)
    text, placeholder = written, ""
    if profile.redirect_base:
        # Every link goes out as a short link of one length (codes have a fixed length).
        placeholder = short_url(profile.redirect_base, "x" * SHORT_CODE_LENGTH)
        text = _URL.sub(lambda _: placeholder, written)
    message = Outgoing(
        idempotency_key="check",
        text=text,
        title=variant.title,
        language=variant.language,
        media=media_from(channel_media(variant, profile.name)),
    )
    for problem in problems(message, profile.limits):
        # Name the field the editor wrote: the channel's own text or media when there is
        # one, the variant's otherwise.
        if problem.field == "title":
            name = f"{field}.title"
        elif own is not None and (
            (problem.field == "text" and own.text.strip())
            or (problem.field.startswith("media") and len(own.media))
        ):
            name = f"{field}.channel_variants[{position}].{problem.field}"
        elif problem.field == "text":
            name = f"{field}.body"
        else:
            name = f"{field}.{problem.field}"
        counted = ""
        if problem.field == "text" and text != written:
            counted = f", its links counted as short links of {len(placeholder)} characters"
        raise InvalidPost(name, f"{problem.problem} (channel {profile.name}{counted})")


# ---------------------------------------------------------------------------- tracked links


SHORT_CODE_LENGTH = 11


def link_code(post_id: str, language: str, channel: str, url: str) -> str:
    """The short code of one link of one variant on one channel: 11 URL-safe characters,
    the same every time (so a retried delivery carries the same short link)."""
    raw = uuid.UUID(stable_id("link", post_id, language, channel, url)).bytes[:8]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def with_utm(url: str, campaign_id: str, channel: str, medium: str, content: str) -> str:
    """``url`` with UTM parameters added; parameters the editor already set are kept."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {name for name, _ in query}
    for name, value in (
        ("utm_source", channel),
        ("utm_medium", medium),
        ("utm_campaign", campaign_id),
        ("utm_content", content),
    ):
        if name not in present:
            query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


def short_url(redirect_base: str, code: str) -> str:
    """The public short link for ``code``."""
    return redirect_base.rstrip("/") + "/r/" + code


def tracked_links(
    post: publish_pb2.PostState,
    variant: publish_pb2.LanguageVariant,
    profile: ChannelProfile,
    redirect_base: str,
) -> list[publish_pb2.TrackedLink]:
    """One tracked link per distinct URL in the text ``profile``'s channel gets."""
    links: list[publish_pb2.TrackedLink] = []
    for url in dict.fromkeys(_URL.findall(channel_text(variant, profile.name))):
        code = link_code(post.post_id, variant.language, profile.name, url)
        links.append(
            publish_pb2.TrackedLink(
                code=code,
                target_url=url,
                tracked_url=with_utm(
                    url, post.campaign_id, profile.name, profile.kind, post.post_id
                ),
                short_url=short_url(redirect_base, code),
                language=variant.language,
                channel=profile.name,
            )
        )
    return links


def rewrite_links(text: str, links: Iterable[publish_pb2.TrackedLink]) -> str:
    """``text`` with every tracked URL replaced by its short link."""
    by_target = {link.target_url: link.short_url for link in links}
    return _URL.sub(lambda match: by_target.get(match.group(), match.group()), text)
