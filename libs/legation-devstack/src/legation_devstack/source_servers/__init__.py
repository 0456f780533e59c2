"""Local servers that answer like the platforms the listener reads, for tests and the local
stack.

Each replays the response shapes of one platform's public API documentation: Mastodon's
timelines (``min_id`` / ``since_id`` / ``max_id`` paging, ``Link`` header, 429 with
``X-RateLimit-Reset`` and ``Retry-After``), Bluesky's ``app.bsky.feed.searchPosts``
(``cursor``, inclusive ``since``), Reddit's OAuth API (application-only token, listings
with ``after``), and an RSS feed with conditional GET plus the article pages it links to.
They reuse :class:`~legation_devstack.channel_servers.base.RecordingHttpServer`: a free
port on 127.0.0.1, a record of every request, canned failures (``fail_next``) for rate
limits and error pages, and ``add_raw`` to slip a malformed item into the next answers.
"""

from legation_devstack.source_servers.bluesky import BlueskySearchServer
from legation_devstack.source_servers.feeds import FeedServer
from legation_devstack.source_servers.mastodon import MastodonTimelineServer
from legation_devstack.source_servers.reddit import RedditApiServer

__all__ = ["BlueskySearchServer", "FeedServer", "MastodonTimelineServer", "RedditApiServer"]
