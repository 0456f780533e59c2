"""``python -m legation_devstack.source_servers``: the platform replay servers on this
machine, seeded with a few posts about a plastics treaty, until Ctrl-C.

Prints the sources to give a tracked issue and the listener settings that point its
Reddit connector at the local server, for trying the listener by hand (the tests start
their own servers).
"""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import UTC, datetime, timedelta

from legation_devstack.source_servers import (
    BlueskySearchServer,
    FeedServer,
    MastodonTimelineServer,
    RedditApiServer,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m legation_devstack.source_servers")
    parser.add_argument("--posts", type=int, default=5, help="posts seeded per platform")
    args = parser.parse_args(argv)
    feed, mastodon = FeedServer(), MastodonTimelineServer()
    bluesky, reddit = BlueskySearchServer(), RedditApiServer()
    servers = (feed, mastodon, bluesky, reddit)
    for server in servers:
        server.start()
    start = datetime.now(UTC) - timedelta(minutes=args.posts)
    for n in range(args.posts):
        at = start + timedelta(minutes=n)
        feed.publish(f"Plastics treaty, day {n}", "Negotiators met again.", published_at=at)
        mastodon.post(f"Plastics treaty update {n}", tags=("plastics",), created_at=at)
        bluesky.post(f"Following the plastics treaty talks ({n})", created_at=at)
        reddit.submit("worldnews", f"Plastics treaty: round {n}", created_at=at)
    print("sources (TrackIssueRequest.feeds):")
    print(f"  {feed.feed_url}")
    print(f"  mastodon:{mastodon.url}/tags/plastics")
    print(f"  bluesky:{bluesky.url}/search?q=treaty")
    print(f"  reddit:{reddit.url}/r/worldnews/new")
    print("listener settings for the replays (they listen on loopback):")
    print("  LEGATION_LISTENER_FETCH_ALLOWED_NETWORKS=127.0.0.0/8,::1")
    print(f"  LEGATION_LISTENER_REDDIT_CLIENT_ID={reddit.client_id}")
    print(f"  LEGATION_LISTENER_REDDIT_CLIENT_SECRET={reddit.client_secret}")
    print(f"  LEGATION_LISTENER_REDDIT_TOKEN_URL={reddit.url}")
    print(f"  LEGATION_LISTENER_REDDIT_API_URL={reddit.url}")
    print("Ctrl-C stops.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    for server in servers:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
