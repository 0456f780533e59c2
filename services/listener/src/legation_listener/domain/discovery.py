"""Discovery (no I/O): where an issue is discussed, by whom, and which sources to add.

From the mentions an issue already has (:class:`~legation_listener.domain.observed.Observed`)
a mention belongs to the communities it was *posted* in and those it *cites* (links to):

| posted on | community |
|---|---|
| a feed or webhook item | the site of its URL (``domain``; ``forum`` when its URLs look |
| | like forum threads) |
| Mastodon | the author's instance (``mastodon_instance``) |
| Bluesky | the author (``bluesky_author``) |
| Reddit | its subreddit |
| anywhere | each of its hashtags (``hashtag``) |

and a link cites a subreddit (``reddit.com/r/<sub>``), a Bluesky feed or author
(``bsky.app/profile/<h>/feed/<f>``, ``bsky.app/profile/<h>``), a Mastodon instance (a status
URL ``https://<host>/@<user>/<digits>``) or otherwise the linked site. Hosts of platforms
that are not communities by themselves (x.com, t.co, facebook.com...) are left out.

Per community, over a window ``[start, end)``: mentions (posted or citing), how many only
cite it, the same count over the window before and the growth, reach, engagement (replies
and copies of its mentions that the listener saw), distinct voices, languages, sentiment and
stance mixes, example URLs, and the tone people write in there
(:mod:`~legation_listener.domain.tone`). Communities are ranked by ``score`` = the sum over
their mentions of ``1 + influence`` plus their engagement: volume first, large audiences and
conversations weigh more.

Source suggestions come from communities the issue's sources do not read yet and that have
at least ``min_mentions`` mentions in the window: a subreddit (``reddit:<api>/r/<sub>/new``),
a hashtag seen on a Mastodon instance (``mastodon:<instance>/tags/<tag>``), and a site, whose
feed must first be found by autodiscovery (:func:`feed_links` on its home page; the adapter
fetches it).
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from legation_core.ids import stable_id
from legation_listener.domain.observed import Observed
from legation_listener.domain.sources import (
    BLUESKY,
    MASTODON,
    REDDIT,
    RSS,
    WEBHOOK,
    SourceError,
    parse_source,
)
from legation_listener.domain.tone import ToneProfile, authors_by_ref, tone_profiles

DOMAIN = "domain"
FORUM = "forum"
SUBREDDIT = "subreddit"
MASTODON_INSTANCE = "mastodon_instance"
HASHTAG = "hashtag"
BLUESKY_AUTHOR = "bluesky_author"
BLUESKY_FEED = "bluesky_feed"
# Sites group into "domain" or "forum" once all their URLs are seen.
_SITE = "site"

REDDIT_HOSTS = frozenset({"reddit.com", "old.reddit.com", "np.reddit.com", "m.reddit.com"})
BLUESKY_HOSTS = frozenset({"bsky.app", "staging.bsky.app"})
# Platforms and link shorteners that say nothing of where a debate happens.
SKIPPED_HOSTS = frozenset(
    {
        "x.com", "twitter.com", "t.co", "facebook.com", "fb.me", "instagram.com", "bit.ly",
        "tinyurl.com", "ow.ly", "buff.ly", "lnkd.in", "linkedin.com", "redd.it", "goo.gl",
        "archive.org", "web.archive.org", "archive.ph", "google.com", "news.google.com",
    }
)  # fmt: skip
_SUBREDDIT_PATH = re.compile(r"^/r/([A-Za-z0-9_]{2,50})(?:/|$)")
_BSKY_FEED = re.compile(r"^/profile/([^/]+)/feed/([^/]+)")
_BSKY_PROFILE = re.compile(r"^/profile/([^/]+)(?:/|$)")
_MASTODON_STATUS = re.compile(r"^/@[A-Za-z0-9_]+(?:@[\w.-]+)?/\d{6,}(?:/|$)")
_FORUM_PATH = re.compile(
    r"(/t/[^/]+/\d+|/threads?/|/topics?/|viewtopic\.php|showthread\.php|/forums?/|"
    r"/discussions?/|/community/)",
    re.IGNORECASE,
)
EXAMPLE_URLS = 3
DEFAULT_MIN_MENTIONS = 3
FORUM_SHARE = 0.5


@dataclass(frozen=True)
class CommunityKey:
    """One community: its kind and key (a host, a subreddit, a hashtag...)."""

    kind: str
    key: str


@dataclass
class CommunityStats:
    """One community over the window (see the module docstring)."""

    kind: str
    key: str
    label: str
    url: str
    mentions: int = 0
    cited: int = 0
    previous_mentions: int = 0
    growth: float = 0.0
    reach: int = 0
    engagement: int = 0
    voices: int = 0
    score: float = 0.0
    rank: int = 0
    languages: list[tuple[str, int]] = field(default_factory=list)
    sentiment: list[tuple[str, int]] = field(default_factory=list)
    stance: list[tuple[str, int]] = field(default_factory=list)
    tracked: bool = False
    example_urls: list[str] = field(default_factory=list)
    tone: list[ToneProfile] = field(default_factory=list)
    # Mastodon instances the community's mentions came from, most first (hashtags).
    instances: list[str] = field(default_factory=list)


@dataclass
class VoiceStats:
    """One author over the window."""

    platform: str
    author: str
    author_id: str
    community: str
    mentions: int = 0
    reach: int = 0
    engagement: int = 0
    score: float = 0.0
    rank: int = 0
    languages: list[tuple[str, int]] = field(default_factory=list)
    sentiment: list[tuple[str, int]] = field(default_factory=list)
    stance: list[tuple[str, int]] = field(default_factory=list)
    example_urls: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Suggestion:
    """A source to add, with its evidence. ``needs_feed``: a site whose feed is still to be
    found (``source`` is then the home page to look on)."""

    suggestion_id: str
    issue_id: str
    source: str
    kind: str
    community: str
    community_kind: str
    reason: str
    mentions: int
    voices: int
    evidence_urls: tuple[str, ...]
    needs_feed: bool = False
    found_on: str = ""
    feed_items: int = 0
    feed_matches: int = 0


@dataclass(frozen=True)
class Discovery:
    """The communities and voices of one issue over one window."""

    start: datetime
    end: datetime
    mentions: int
    communities: list[CommunityStats]
    voices: list[VoiceStats]


def host_of(url: str) -> str:
    """The site of a URL: its lower-cased host (and a port other than the scheme's), without
    ``www.``; empty for anything but http(s)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    host = parts.hostname.lower().removeprefix("www.")
    default = 443 if parts.scheme.lower() == "https" else 80
    return f"{host}:{port}" if port is not None and port != default else host


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _is_skipped(host: str) -> bool:
    bare = host.split(":")[0]
    return any(bare == s or bare.endswith("." + s) for s in SKIPPED_HOSTS)


def _is_reddit(host: str) -> bool:
    bare = host.split(":")[0]
    return bare in REDDIT_HOSTS or bare.endswith(".reddit.com")


def cited_community(url: str) -> tuple[CommunityKey, str, str] | None:
    """The community a link points to, with its label and URL; None for links that name
    none (platforms, shorteners, not http)."""
    host = host_of(url)
    if not host or _is_skipped(host):
        return None
    path = urlsplit(url).path
    if _is_reddit(host):
        found = _SUBREDDIT_PATH.match(path)
        if not found:
            return None
        sub = found.group(1)
        return CommunityKey(SUBREDDIT, sub.lower()), f"r/{sub}", f"https://www.reddit.com/r/{sub}"
    if host in BLUESKY_HOSTS:
        feed = _BSKY_FEED.match(path)
        if feed:
            uri = f"at://{feed.group(1)}/app.bsky.feed.generator/{feed.group(2)}"
            label = f"{feed.group(1)}/{feed.group(2)}"
            return CommunityKey(BLUESKY_FEED, uri), label, url
        profile = _BSKY_PROFILE.match(path)
        if profile:
            handle = profile.group(1)
            return (
                CommunityKey(BLUESKY_AUTHOR, handle.lower()),
                handle,
                f"https://bsky.app/profile/{handle}",
            )
        return None
    if _MASTODON_STATUS.match(path):
        return CommunityKey(MASTODON_INSTANCE, host), host, _origin(url)
    return CommunityKey(_SITE, host), host, _origin(url)


def _bluesky_handle(mention: Observed) -> str:
    found = _BSKY_PROFILE.match(urlsplit(mention.url).path) if mention.url else None
    return found.group(1) if found else ""


def posted_communities(mention: Observed) -> list[tuple[CommunityKey, str, str]]:
    """The communities a mention was posted in (see the module docstring)."""
    found: list[tuple[CommunityKey, str, str]] = []
    if mention.source in (RSS, WEBHOOK):
        host = host_of(mention.url)
        if host and not _is_skipped(host):
            cited = cited_community(mention.url)
            if cited is not None:
                found.append(cited)
    elif mention.source == MASTODON:
        home = mention.author_id if host_of(mention.author_id) else mention.url
        host = host_of(home)
        if host:
            found.append((CommunityKey(MASTODON_INSTANCE, host), host, _origin(home)))
    elif mention.source == BLUESKY:
        handle = _bluesky_handle(mention)
        key = (handle or mention.author_id).lower()
        if key:
            label = handle or mention.author or mention.author_id
            url = f"https://bsky.app/profile/{handle or mention.author_id}"
            found.append((CommunityKey(BLUESKY_AUTHOR, key), label, url))
    elif mention.source == REDDIT:
        cited = cited_community(mention.url)
        if cited is not None:
            found.append(cited)
    for tag in mention.hashtags:
        tag = tag.lower().lstrip("#")
        if tag:
            found.append((CommunityKey(HASHTAG, tag), f"#{tag}", ""))
    return found


def cited_communities(mention: Observed) -> list[tuple[CommunityKey, str, str]]:
    """The communities a mention links to (its own site excluded)."""
    own = host_of(mention.url)
    found = []
    for link in mention.links:
        cited = cited_community(link)
        if cited is not None and not (cited[0].kind == _SITE and cited[0].key == own):
            found.append(cited)
    return found


def _counts(values: Iterable[str]) -> list[tuple[str, int]]:
    return sorted(Counter(values).items(), key=lambda pair: (-pair[1], pair[0]))


def _voice_key(mention: Observed) -> tuple[str, str] | None:
    who = mention.author_id or mention.author
    if not who:
        return None
    if mention.source in (RSS, WEBHOOK) and not mention.author_id:
        # A by-line means something only on its own site ("Desk" is everywhere).
        who = f"{host_of(mention.url)} {who}"
    return mention.source, who


def _engagement(mentions: Sequence[Observed]) -> Counter[str]:
    """Per mention id: the replies to it and copies of it among ``mentions``."""
    by_ref: dict[str, str] = {}
    for m in mentions:
        for ref in (m.item_id, m.url):
            if ref:
                by_ref[ref] = m.mention_id
    drawn: Counter[str] = Counter()
    for m in mentions:
        if m.in_reply_to and m.in_reply_to in by_ref:
            drawn[by_ref[m.in_reply_to]] += 1
        if m.duplicate_of:
            drawn[m.duplicate_of] += 1
    return drawn


def tracked_keys(sources: Sequence[str]) -> set[CommunityKey]:
    """The communities an issue's sources read already (malformed entries are ignored)."""
    keys: set[CommunityKey] = set()
    for spec in sources:
        try:
            source = parse_source(spec)
        except SourceError:
            continue
        if source.kind == RSS:
            host = host_of(source.url)
            if host:
                keys.add(CommunityKey(_SITE, host))
        elif source.kind == REDDIT:
            found = _SUBREDDIT_PATH.match("/" + source.path)
            if found:
                keys.add(CommunityKey(SUBREDDIT, found.group(1).lower()))
        elif source.kind == MASTODON and source.path.startswith("tags/"):
            keys.add(CommunityKey(HASHTAG, source.path.removeprefix("tags/").lower()))
    return keys


def discover(
    mentions: Sequence[Observed],
    start: datetime,
    end: datetime,
    *,
    tracked_sources: Sequence[str] = (),
    limit: int | None = None,
) -> Discovery:
    """Ranks the communities and voices of ``mentions`` published in ``[start, end)``
    (the first ``limit`` of each, all by default); mentions of the window of equal length
    before ``start`` give ``previous_mentions``."""
    previous_start = start - (end - start)
    current = [m for m in mentions if start <= m.published_at < end]
    previous = [m for m in mentions if previous_start <= m.published_at < start]
    drawn = _engagement(current)
    tracked = tracked_keys(tracked_sources)
    authors = authors_by_ref(current)

    members: dict[CommunityKey, dict[str, tuple[Observed, bool]]] = defaultdict(dict)
    labels: dict[CommunityKey, tuple[str, str]] = {}
    for m in current:
        for key, label, url in posted_communities(m):
            members[key][m.mention_id] = (m, True)
            labels.setdefault(key, (label, url))
        for key, label, url in cited_communities(m):
            members[key].setdefault(m.mention_id, (m, False))
            labels.setdefault(key, (label, url))
    before: Counter[CommunityKey] = Counter()
    for m in previous:
        keys = {key for key, _, _ in posted_communities(m) + cited_communities(m)}
        before.update(keys)

    communities = [
        _community(
            key, labels[key], list(group.values()), before[key], drawn, key in tracked, authors
        )
        for key, group in members.items()
    ]
    communities.sort(key=lambda c: (-c.score, -c.mentions, c.kind, c.key))
    for rank, community in enumerate(communities, start=1):
        community.rank = rank

    voices = _voices(current, drawn)
    return Discovery(start, end, len(current), communities[:limit], voices[:limit])


def _community(
    key: CommunityKey,
    label_url: tuple[str, str],
    group: list[tuple[Observed, bool]],
    previous: int,
    drawn: Counter[str],
    tracked: bool,
    authors_by_ref: Mapping[str, str],
) -> CommunityStats:
    kind = key.kind
    posted = [m for m, here in group if here]
    everyone = [m for m, _ in group]
    if kind == _SITE:
        urls = [m.url for m in posted if m.url] + [
            link for m in everyone for link in m.links if host_of(link) == key.key
        ]
        forum_like = sum(1 for url in urls if _FORUM_PATH.search(urlsplit(url).path))
        threaded = sum(1 for m in posted if m.in_reply_to or m.thread_id)
        is_forum = bool(urls) and (forum_like + threaded) / max(len(urls), 1) >= FORUM_SHARE
        kind = FORUM if is_forum else DOMAIN
    engagement = sum(drawn[m.mention_id] for m in everyone)
    authors: dict[str, int] = {}
    for m in posted:
        who = m.author_id or m.author
        if who:
            authors[who] = max(authors.get(who, 0), m.reach)
    if key.kind == SUBREDDIT:
        reach = max((m.reach for m in posted), default=0)
    else:
        reach = sum(authors.values())
    count = len(everyone)
    examples = sorted(everyone, key=lambda m: (-m.influence, -m.published_at.timestamp()))
    instances = _counts(
        host_of(m.author_id) or host_of(m.url) for m in posted if m.source == MASTODON
    )
    return CommunityStats(
        kind=kind,
        key=key.key,
        label=label_url[0],
        url=label_url[1],
        mentions=count,
        cited=count - len(posted),
        previous_mentions=previous,
        growth=(count - previous) / max(previous, 1),
        reach=reach,
        engagement=engagement,
        voices=len(authors),
        score=round(sum(1.0 + m.influence for m in everyone) + engagement, 6),
        languages=_counts(_primary(m.language) for m in everyone),
        sentiment=_counts(m.sentiment for m in everyone),
        stance=_counts(m.stance for m in everyone),
        tracked=tracked,
        example_urls=[m.url for m in examples if m.url][:EXAMPLE_URLS],
        tone=tone_profiles(posted, authors_by_ref),
        instances=[host for host, _ in instances],
    )


def _primary(language: str) -> str:
    return (language or "und").split("-")[0].lower()


def _voices(current: Sequence[Observed], drawn: Counter[str]) -> list[VoiceStats]:
    groups: dict[tuple[str, str], list[Observed]] = defaultdict(list)
    for m in current:
        key = _voice_key(m)
        if key is not None:
            groups[key].append(m)
    voices = []
    for (platform, _), group in groups.items():
        homes = Counter(label for m in group for _, label, _ in posted_communities(m)[:1])
        reach = 0 if platform == REDDIT else max(m.reach for m in group)
        engagement = sum(drawn[m.mention_id] for m in group)
        latest = max(group, key=lambda m: m.published_at)
        voices.append(
            VoiceStats(
                platform=platform,
                author=latest.author,
                author_id=latest.author_id,
                community=homes.most_common(1)[0][0] if homes else "",
                mentions=len(group),
                reach=reach,
                engagement=engagement,
                score=round(sum(1.0 + m.influence for m in group) + engagement, 6),
                languages=_counts(_primary(m.language) for m in group),
                sentiment=_counts(m.sentiment for m in group),
                stance=_counts(m.stance for m in group),
                example_urls=[m.url for m in sorted(group, key=lambda m: m.published_at)[-3:]][
                    ::-1
                ],
            )
        )
    voices.sort(key=lambda v: (-v.score, -v.mentions, v.platform, v.author_id, v.author))
    for rank, voice in enumerate(voices, start=1):
        voice.rank = rank
    return voices


def _reddit_api(tracked_sources: Sequence[str], default: str) -> str:
    for spec in tracked_sources:
        try:
            source = parse_source(spec)
        except SourceError:
            continue
        if source.kind == REDDIT:
            return source.base_url
    return default.rstrip("/")


def suggest_sources(
    issue_id: str,
    discovery: Discovery,
    tracked_sources: Sequence[str],
    *,
    reddit_api: str,
    min_mentions: int = DEFAULT_MIN_MENTIONS,
) -> list[Suggestion]:
    """Sources worth adding to the issue, best community first: untracked subreddits,
    hashtags seen on a Mastodon instance and sites (``needs_feed``) with at least
    ``min_mentions`` mentions in the window."""
    api = _reddit_api(tracked_sources, reddit_api)
    mastodon_instances = [
        parse_source(spec).base_url
        for spec in tracked_sources
        if spec.startswith(f"{MASTODON}:") and _parses(spec)
    ]
    present = set(tracked_sources)
    found: list[Suggestion] = []
    window = f"{_hours(discovery.end - discovery.start)} h"
    for c in discovery.communities:
        if c.tracked or c.mentions < min_mentions:
            continue
        evidence = (
            f"{c.mentions} mentions ({c.cited} linking there) from {c.voices} voices in the last "
            f"{window}, growth {c.growth:+.0%}"
        )
        source, kind, needs_feed = "", "", False
        if c.kind == SUBREDDIT and api:
            source, kind = f"{REDDIT}:{api}/r/{c.label.removeprefix('r/')}/new", REDDIT
        elif c.kind == HASHTAG:
            origin = (
                f"https://{c.instances[0]}"
                if c.instances
                else (mastodon_instances[0] if mastodon_instances else "")
            )
            if not origin:
                continue
            source, kind = f"{MASTODON}:{origin}/tags/{c.key}", MASTODON
        elif c.kind in (DOMAIN, FORUM) and c.url:
            source, kind, needs_feed = c.url + "/", RSS, True
        else:
            continue
        if source in present or not _parses(source if not needs_feed else "x:" + source):
            continue
        found.append(
            Suggestion(
                suggestion_id=stable_id("source-suggestion", issue_id, source),
                issue_id=issue_id,
                source=source,
                kind=kind,
                community=c.label,
                community_kind=c.kind,
                reason=f"{c.label} is not tracked: {evidence}",
                mentions=c.mentions,
                voices=c.voices,
                evidence_urls=tuple(c.example_urls),
                needs_feed=needs_feed,
            )
        )
    return found


def _parses(spec: str) -> bool:
    if spec.startswith("x:"):
        return bool(host_of(spec[2:]))
    try:
        parse_source(spec)
    except SourceError:
        return False
    return True


def _hours(delta: timedelta) -> int:
    return math.ceil(delta.total_seconds() / 3600)


class _FeedLinks(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.base = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): (value or "") for name, value in attrs}
        if tag == "base" and values.get("href") and not self.base:
            self.base = values["href"]
        if tag != "link":
            return
        rel = values.get("rel", "").lower().split()
        kind = values.get("type", "").lower().split(";")[0].strip()
        if "alternate" in rel and kind in FEED_TYPES and values.get("href", "").strip():
            self.links.append(values["href"].strip())


FEED_TYPES = frozenset({"application/rss+xml", "application/atom+xml"})


def feed_links(page: str, page_url: str) -> list[str]:
    """The RSS and Atom feeds a web page announces (``<link rel="alternate"
    type="application/rss+xml" href>``, RSS autodiscovery), as absolute http(s) URLs in page
    order, without repeats. JSON feeds are not read by the listener, so left out."""
    parser = _FeedLinks()
    try:
        parser.feed(page)
        parser.close()
    except (AssertionError, ValueError):  # a broken page: keep what was read
        pass
    base = urljoin(page_url, parser.base) if parser.base else page_url
    found: list[str] = []
    for href in parser.links:
        url = urljoin(base, href)
        if urlsplit(url).scheme.lower() in ("http", "https") and url not in found:
            found.append(url)
    return found


def with_feed(suggestion: Suggestion, feed: str, items: int, matches: int) -> Suggestion:
    """A site's suggestion once its feed was found: the feed becomes the source."""
    return Suggestion(
        suggestion_id=stable_id("source-suggestion", suggestion.issue_id, feed),
        issue_id=suggestion.issue_id,
        source=feed,
        kind=RSS,
        community=suggestion.community,
        community_kind=suggestion.community_kind,
        reason=(
            f"{suggestion.reason}; its page {suggestion.source} announces this feed"
            f" ({items} items, {matches} matching the issue now)"
        ),
        mentions=suggestion.mentions,
        voices=suggestion.voices,
        evidence_urls=suggestion.evidence_urls,
        found_on=suggestion.source,
        feed_items=items,
        feed_matches=matches,
    )
