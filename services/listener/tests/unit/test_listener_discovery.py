"""Discovery (no I/O): communities and voices ranked from mentions, source suggestions,
feed autodiscovery links, and the tone advice shown with each community."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from legation_listener.domain.discovery import (
    DOMAIN,
    FORUM,
    HASHTAG,
    MASTODON_INSTANCE,
    SUBREDDIT,
    CommunityStats,
    cited_community,
    discover,
    feed_links,
    host_of,
    suggest_sources,
    with_feed,
)
from legation_listener.domain.observed import MentionWindow, Observed
from legation_listener.domain.tone import formality, profile, tone_profiles

END = datetime(2026, 11, 20, 12, tzinfo=UTC)
START = END - timedelta(days=7)
API = "https://oauth.reddit.com"


def mention(number: int, **fields: object) -> Observed:
    base = Observed(
        mention_id=f"m{number}",
        source="rss",
        source_url="https://news.example.org/feed.xml",
        item_id=f"i{number}",
        url=f"https://news.example.org/a/{number}",
        author="Desk",
        author_id="",
        title="",
        text="The plastics treaty talks go on.",
        language="en",
        sentiment="neutral",
        stance="unknown",
        reach=0,
        influence=0.0,
        published_at=END - timedelta(hours=number + 1),
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def reddit(number: int, sub: str, author: str, **fields: object) -> Observed:
    return mention(
        number,
        source="reddit",
        url=f"https://www.reddit.com/r/{sub}/comments/x{number}/t/",
        author=author,
        author_id=f"t2_{author}",
        reach=50_000,
        **fields,
    )


def toot(number: int, user: str, **fields: object) -> Observed:
    return mention(
        number,
        source="mastodon",
        url=f"https://social.example/@{user}/{100000000 + number}",
        author=user,
        author_id=f"https://social.example/@{user}",
        **fields,
    )


def by_label(communities: list[CommunityStats]) -> dict[str, CommunityStats]:
    return {c.label: c for c in communities}


def sample() -> list[Observed]:
    return [
        # Four posts in r/plasticfree by three people, one a reply to another.
        reddit(1, "plasticfree", "ana", item_id="t3_a", language="es"),
        reddit(2, "plasticfree", "bo", in_reply_to="t3_a", sentiment="negative"),
        reddit(3, "plasticfree", "cy", stance="against"),
        reddit(4, "plasticfree", "ana", language="es"),
        # The tracked news site, and two posts linking to a blog nobody tracks.
        mention(5, links=("https://blog.example.net/2026/cap",)),
        mention(6, links=("https://www.blog.example.net/2026/cap", "https://t.co/xyz")),
        # Mastodon: two people with followers, one hashtag, and a copy of one toot.
        toot(7, "dee", reach=1000, hashtags=("plastics",), influence=0.4),
        toot(8, "eve", reach=300, hashtags=("plastics",), influence=0.3),
        toot(9, "eve", reach=300, hashtags=("plastics",), duplicate_of="m7"),
        # A forum thread linked once.
        mention(10, links=("https://forum.example.com/t/cap-or-not/123",)),
        # Before the window: r/plasticfree had one mention.
        reddit(11, "plasticfree", "old", published_at=START - timedelta(days=1)),
    ]


def test_communities_are_found_from_where_mentions_were_posted_and_what_they_link_to() -> None:
    found = discover(sample(), START, END, tracked_sources=["https://news.example.org/feed.xml"])
    assert found.mentions == 10
    communities = by_label(found.communities)
    sub = communities["r/plasticfree"]
    assert (sub.kind, sub.mentions, sub.cited, sub.voices) == (SUBREDDIT, 4, 0, 3)
    assert (sub.previous_mentions, sub.growth) == (1, 3.0)
    assert sub.reach == 50_000  # the subreddit's subscribers, not summed per author
    assert sub.engagement == 1  # one reply to its first post
    assert sub.languages == [("en", 2), ("es", 2)]  # most first, then by name
    assert ("against", 1) in sub.stance
    assert not sub.tracked
    blog = communities["blog.example.net"]
    assert (blog.kind, blog.mentions, blog.cited, blog.voices) == (DOMAIN, 2, 2, 0)
    assert communities["news.example.org"].tracked
    assert communities["forum.example.com"].kind == FORUM
    instance = communities["social.example"]
    assert instance.kind == MASTODON_INSTANCE
    assert instance.reach == 1300  # each author's followers once
    assert instance.engagement == 1  # the copy of m7
    assert communities["#plastics"].kind == HASHTAG
    assert "t.co" not in communities
    # Ranked by score: volume, influence and engagement.
    assert found.communities[0].label == "r/plasticfree"
    assert [c.rank for c in found.communities] == list(range(1, len(found.communities) + 1))


def test_voices_are_ranked_with_their_platform_and_home_community() -> None:
    found = discover(sample(), START, END)
    voices = {(v.platform, v.author): v for v in found.voices}
    ana = voices[("reddit", "ana")]
    assert (ana.mentions, ana.reach, ana.community) == (2, 0, "r/plasticfree")
    assert ana.engagement == 1
    eve = voices[("mastodon", "eve")]
    assert (eve.mentions, eve.reach, eve.community) == (2, 300, "social.example")
    # "Desk" on the news site is one voice there, not every site's desk.
    assert voices[("rss", "Desk")].community == "news.example.org"
    assert found.voices[0].rank == 1


def test_untracked_communities_where_mentions_cluster_become_suggestions() -> None:
    tracked = ["https://news.example.org/feed.xml", f"reddit:{API}/search?q=plastics"]
    found = discover(sample(), START, END, tracked_sources=tracked)
    suggestions = {
        s.community: s
        for s in suggest_sources("plastics", found, tracked, reddit_api="https://x", min_mentions=2)
    }
    sub = suggestions["r/plasticfree"]
    assert sub.source == f"reddit:{API}/r/plasticfree/new"  # the API the issue already uses
    assert sub.kind == "reddit"
    assert "r/plasticfree is not tracked: 4 mentions" in sub.reason
    assert sub.evidence_urls
    tag = suggestions["#plastics"]
    assert tag.source == "mastodon:https://social.example/tags/plastics"
    blog = suggestions["blog.example.net"]
    assert blog.needs_feed and blog.source == "https://blog.example.net/"
    assert "news.example.org" not in suggestions  # tracked
    assert "forum.example.com" not in suggestions  # one mention, under min_mentions
    found_feed = with_feed(blog, "https://blog.example.net/feed.xml", 12, 4)
    assert found_feed.source == "https://blog.example.net/feed.xml"
    assert (found_feed.kind, found_feed.found_on) == ("rss", "https://blog.example.net/")
    assert "12 items, 4 matching the issue now" in found_feed.reason
    assert not found_feed.needs_feed


def test_a_tracked_subreddit_or_hashtag_is_not_suggested_again() -> None:
    tracked = [f"reddit:{API}/r/plasticfree/new", "mastodon:https://social.example/tags/plastics"]
    found = discover(sample(), START, END, tracked_sources=tracked)
    labels = {s.community for s in suggest_sources("p", found, tracked, reddit_api=API)}
    assert "r/plasticfree" not in labels
    assert "#plastics" not in labels


def test_links_name_their_community() -> None:
    assert cited_community("https://old.reddit.com/r/Europe/comments/1/x/")[1] == "r/Europe"  # type: ignore[index]
    feed = cited_community("https://bsky.app/profile/ana.bsky.social/feed/plastics")
    assert feed is not None and feed[0].kind == "bluesky_feed"
    assert cited_community("https://bsky.app/profile/ana.bsky.social")[0].kind == "bluesky_author"  # type: ignore[index]
    toot_link = cited_community("https://mastodon.social/@ana/113400000000000001")
    assert toot_link is not None and toot_link[0].kind == MASTODON_INSTANCE
    # Medium's /@user/slug is a site, not a Mastodon status.
    assert cited_community("https://medium.com/@ana/plastics-1")[0].kind == "site"  # type: ignore[index]
    assert cited_community("https://twitter.com/ana/status/1") is None
    assert cited_community("mailto:ana@example.org") is None
    assert host_of("http://127.0.0.1:8080/x") == "127.0.0.1:8080"
    assert host_of("https://WWW.Example.org:443/") == "example.org"


def test_feed_links_follow_rss_autodiscovery() -> None:
    page = """<html><head><base href="https://blog.example.net/en/">
    <link rel="stylesheet" href="/style.css">
    <link rel="alternate" type="application/rss+xml" href="feed.xml">
    <link rel="Alternate" type="application/atom+xml; charset=utf-8" href="/atom.xml">
    <link rel="alternate" type="application/rss+xml" href="feed.xml">
    <link rel="alternate" type="application/feed+json" href="/feed.json">
    <link rel="alternate" hreflang="fr" href="/fr/">
    </head><body><a rel="alternate" type="application/rss+xml" href="/nope.xml">x</a>"""
    assert feed_links(page, "https://blog.example.net/") == [
        "https://blog.example.net/en/feed.xml",
        "https://blog.example.net/atom.xml",
    ]
    assert feed_links("<html><body>no head</body></html>", "https://x.org/") == []


def test_the_mention_window_keeps_the_newest_per_issue_and_replaces_repeats() -> None:
    window = MentionWindow(per_issue=10, max_age=timedelta(days=30))
    window.add("a", [mention(n) for n in range(20)], END)
    window.add("a", [mention(0, text="edited")], END)
    kept = window.mentions("a")
    assert len(kept) <= 11
    assert kept[-1].mention_id == "m0" and kept[-1].text == "edited"
    assert [m.published_at for m in kept] == sorted(m.published_at for m in kept)
    window.add("a", [mention(99, published_at=END - timedelta(days=31))], END)
    assert "m99" not in {m.mention_id for m in window.mentions("a")}
    assert window.mentions("a", since=END - timedelta(hours=3)) == [
        m for m in kept if m.published_at >= END - timedelta(hours=3)
    ]
    assert window.mentions("other") == []


def test_tone_of_a_chatty_spanish_thread_advises_short_questions_and_replies() -> None:
    texts = [
        "¿Y quién paga el tratado? jajaja 😂 #plastico",
        "¿En serio? Nadie pregunta a los pescadores!! #plastico",
        "Totalmente de acuerdo 👍",
        "¿Alguien sabe cuándo vota el gobierno? @MinisterioTransicion",
    ]
    posts = [
        toot(
            n,
            f"u{n}",
            text=t,
            language="es",
            hashtags=("plastico",) if "#" in t else (),
            in_reply_to="x" if n % 2 else "",
            mentioned_accounts=("MinisterioTransicion",) if "@" in t else (),
        )
        for n, t in enumerate(texts)
    ]
    [tone] = tone_profiles(posts)
    assert tone.language == "es"
    assert tone.question_share == 0.75
    assert tone.reply_share == 0.5
    assert tone.institution_share == 0.25
    assert tone.register == "informal"
    assert tone.recommendation.startswith("short (about ")
    for part in (
        "informal",
        "questions welcome",
        "Spanish",
        "a hashtag or two (#plastico)",
        "emoji are common",
        "institutions are addressed directly",
        "reply in thread",
    ):
        assert part in tone.recommendation, part


def test_tone_of_long_formal_articles_advises_long_form_without_hashtags() -> None:
    article = (
        "The intergovernmental negotiating committee considered the proposed instrument's "
        "provisions concerning production, consumption, international cooperation and the "
        "financial mechanism. Delegations emphasised implementation, monitoring, reporting "
        "and verification requirements. "
    ) * 7
    posts = [mention(n, text=article, links=("https://example.org/report",)) for n in range(3)]
    tone = profile("en", posts)
    assert tone.register == "formal"
    assert tone.formality > formality(["lol this is sooo bad!!! 😂 don't care"])
    assert tone.recommendation.startswith("long-form (about ")
    assert "no hashtags" in tone.recommendation
    assert "link your sources" in tone.recommendation
    assert tone.recommendation.endswith("post on its own")
    # Fewer than three posts in a language give no profile.
    assert tone_profiles(posts[:2]) == []
