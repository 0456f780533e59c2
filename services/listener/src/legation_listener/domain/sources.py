"""Sources: what an entry of a tracked issue's ``feeds`` names, and how it is read.

An entry is either an RSS or Atom feed (an ``http(s)://`` URL, a ``file://`` URL or a local
path) or a connector's source written ``<kind>:<location>``:

- ``mastodon:https://<instance>/tags/<hashtag>``: the hashtag timeline of an instance;
  ``mastodon:https://<instance>/public`` (federated) or ``.../public/local`` (local only);
- ``bluesky:https://<appview>/search?q=<words>[&lang=<tag>]``: ``app.bsky.feed.searchPosts``;
- ``reddit:https://<oauth api>/r/<subreddit>/new`` (also ``/comments``),
  ``reddit:https://<oauth api>/search?q=<words>`` or ``.../r/<subreddit>/search?q=<words>``;
- ``webhook:<name>``: items pushed to the listener's webhook (or imported from JSONL)
  under ``<name>``.

The location carries the base URL, so every connector can be pointed at a local replay
server (tests) or another instance. Parsing is pure; :class:`SourceError` names the
problem.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

RSS = "rss"
MASTODON = "mastodon"
BLUESKY = "bluesky"
REDDIT = "reddit"
WEBHOOK = "webhook"
CONNECTOR_KINDS = (MASTODON, BLUESKY, REDDIT, WEBHOOK)
FEED_SCHEMES = ("http", "https", "file")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SUBREDDIT = re.compile(r"^[A-Za-z0-9_]{2,50}$")
_REDDIT_LISTINGS = ("new", "comments")


class SourceError(ValueError):
    """An entry of ``feeds`` that no connector can read; the message says why."""


@dataclass(frozen=True)
class Source:
    """One parsed source.

    ``spec`` is the entry as the issue writes it (the cursor key and the mention's
    ``source_url``); ``url`` the location (the base URL plus path for connectors, the feed
    for RSS); ``base_url`` scheme and host of the API; ``path`` what to read there
    (``tags/<tag>``, ``public``, ``public/local``, a Reddit listing path, a webhook name);
    ``params`` the query parameters (Bluesky and Reddit searches)."""

    spec: str
    kind: str
    url: str
    base_url: str = ""
    path: str = ""
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str, default: str = "") -> str:
        for key, value in self.params:
            if key == name:
                return value
        return default


def source_kind(spec: str) -> str:
    """The kind of a source entry without validating it ("rss" for anything that is not
    ``<connector kind>:...``)."""
    head, sep, _ = spec.partition(":")
    if sep and head.lower() in CONNECTOR_KINDS:
        return head.lower()
    return RSS


def is_local_feed(spec: str) -> bool:
    """True for a feed that is a local file: a plain path or a ``file://`` URL."""
    return source_kind(spec) == RSS and (
        "://" not in spec or urlsplit(spec).scheme.lower() == "file"
    )


def source_location(spec: str) -> str:
    """The location of a source entry: the URL after the kind for a connector, the entry
    itself for a feed (what ``source:`` in a query matches hosts against)."""
    return spec.partition(":")[2] if source_kind(spec) != RSS else spec


def _http_url(spec: str, location: str) -> tuple[str, str, dict[str, list[str]]]:
    parts = urlsplit(location)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise SourceError(f"{spec!r} needs an http(s) URL after the kind")
    base = f"{parts.scheme.lower()}://{parts.netloc}"
    return base, parts.path.strip("/"), parse_qs(parts.query, keep_blank_values=False)


def _flat(
    query: dict[str, list[str]], allowed: tuple[str, ...], spec: str
) -> tuple[tuple[str, str], ...]:
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise SourceError(
            f"{spec!r} has unsupported parameters {unknown} (allowed: {list(allowed)})"
        )
    return tuple((key, values[-1]) for key, values in sorted(query.items()))


def parse_source(spec: str) -> Source:
    """The source an entry of ``feeds`` names, or :class:`SourceError`."""
    spec = spec.strip()
    if not spec:
        raise SourceError("a source cannot be blank")
    kind = source_kind(spec)
    if kind == RSS:
        scheme = urlsplit(spec).scheme.lower()
        if "://" in spec and scheme not in FEED_SCHEMES:
            raise SourceError(f"{spec!r} has an unsupported scheme {scheme!r}")
        return Source(spec=spec, kind=RSS, url=spec)
    location = spec.partition(":")[2].strip()
    if kind == WEBHOOK:
        if not _NAME.match(location):
            raise SourceError(f"{spec!r}: a webhook name is 1-100 letters, digits, '.', '_' or '-'")
        return Source(spec=spec, kind=WEBHOOK, url=spec, path=location)
    base, path, query = _http_url(spec, location)
    url = f"{base}/{path}" if path else base
    if kind == MASTODON:
        _flat(query, (), spec)
        segments = path.split("/")
        if segments[-2:-1] == ["tags"] and len(segments) >= 2 and segments[-1]:
            tag = segments[-1].lstrip("#")
            base = f"{base}/{'/'.join(segments[:-2])}".rstrip("/")
            return Source(spec, MASTODON, url, base, f"tags/{tag}")
        if segments[-1:] == ["public"] or segments[-2:] == ["public", "local"]:
            local = segments[-1] == "local"
            cut = 2 if local else 1
            base = f"{base}/{'/'.join(segments[:-cut])}".rstrip("/")
            return Source(spec, MASTODON, url, base, "public/local" if local else "public")
        raise SourceError(
            f"{spec!r}: a Mastodon source ends in /tags/<hashtag>, /public or /public/local"
        )
    if kind == BLUESKY:
        params = _flat(query, ("q", "lang", "author", "domain"), spec)
        if not dict(params).get("q", "").strip():
            raise SourceError(f"{spec!r}: a Bluesky source needs search words: .../search?q=...")
        if not path.endswith("search"):
            raise SourceError(f"{spec!r}: a Bluesky source is <appview URL>/search?q=<words>")
        api_base = f"{base}/{path[: -len('search')]}".rstrip("/")
        return Source(spec, BLUESKY, url, api_base, "search", params)
    # Reddit
    params = _flat(query, ("q", "restrict_sr", "t"), spec)
    segments = path.split("/")
    if segments[-1:] == ["search"]:
        if not dict(params).get("q", "").strip():
            raise SourceError(f"{spec!r}: a Reddit search needs words: .../search?q=...")
        prefix = segments[:-1]
        if prefix and (len(prefix) != 2 or prefix[0] != "r" or not _SUBREDDIT.match(prefix[1])):
            raise SourceError(f"{spec!r}: a Reddit search is /search or /r/<subreddit>/search")
        return Source(spec, REDDIT, url, base, path, params)
    if (
        len(segments) == 3
        and segments[0] == "r"
        and _SUBREDDIT.match(segments[1])
        and segments[2] in _REDDIT_LISTINGS
    ):
        if params:
            raise SourceError(f"{spec!r}: a subreddit listing takes no parameters")
        return Source(spec, REDDIT, url, base, path)
    raise SourceError(
        f"{spec!r}: a Reddit source is /r/<subreddit>/new, /r/<subreddit>/comments,"
        " /search?q=... or /r/<subreddit>/search?q=..."
    )
