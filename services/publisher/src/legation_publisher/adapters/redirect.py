"""The short-link endpoint: ``GET /r/<code>`` answers 302 to the tracked URL and emits a
LinkClick for the evaluator.

The click event is produced and acknowledged before the redirect is answered. Link-preview
fetchers and crawlers (Mastodon servers building a preview card, Slack, search engines) are
redirected without an event: they are not readers. When Kafka
cannot take it the reader is still redirected (a reader must not pay for our broker), and
the lost click is logged and counted in ``legation_publisher_link_clicks_total``.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter

from legation.events.v1 import publish_pb2
from legation_core.codec import Envelope, make_envelope
from legation_publisher.adapters.sink import EventSink
from legation_publisher.adapters.state import PostBook
from legation_publisher.domain.posts import SERVICE

log = logging.getLogger(__name__)

LINK_CLICKS_TOPIC = "legation.publish.link-clicks.v1"
_PATH = re.compile(r"/r/([A-Za-z0-9_-]{1,32})/?")
# Link-preview fetchers and crawlers, by their User-Agent: every Mastodon server our post
# federates to fetches its links for a preview card ("http.rb/5.1.1 (Mastodon/4.2.0;
# +https://social.example/) Bot"), as do Bluesky ("Bluesky Cardyb"), Telegram
# ("TelegramBot (like TwitterBot)"), Slack, Facebook, WhatsApp and search engines. They are
# redirected but are not readers' clicks. "bot" counts as a word or before / ) ; - only,
# so a phone model such as "CUBOT X30" is a reader.
_NOT_A_READER = re.compile(
    r"\bbot\b|bot[/);-]|crawler|spider|mastodon/|cardyb|facebookexternalhit|whatsapp"
    r"|skypeuripreview|embedly|preview",
    re.IGNORECASE,
)


def is_preview_fetch(user_agent: str) -> bool:
    """True when ``user_agent`` is a link-preview fetcher or a crawler, not a reader."""
    return bool(_NOT_A_READER.search(user_agent))


def click_envelope(
    post: publish_pb2.PostState, link: publish_pb2.TrackedLink, referrer: str, now: datetime
) -> Envelope:
    """The LinkClick event of one click (each click is its own event)."""
    click = publish_pb2.LinkClick(
        click_id=str(uuid.uuid4()),
        code=link.code,
        post_id=post.post_id,
        language=link.language,
        channel=link.channel,
        target_url=link.target_url,
        referrer_host=urlsplit(referrer).hostname or "" if referrer else "",
    )
    click.clicked_at.FromDatetime(now)
    return make_envelope(
        click,
        event_id=click.click_id,
        source_service=SERVICE,
        occurred_at=now,
        campaign_id=post.campaign_id,
        issue_id=post.issue_id,
    )


class RedirectServer:
    """Serves short links on ``port`` in a thread of its own."""

    def __init__(
        self,
        book: PostBook,
        producer: EventSink,
        port: int,
        host: str = "0.0.0.0",
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.book = book
        self.producer = producer
        self.clock = clock
        self.clicks = Counter(
            "legation_publisher_link_clicks_total",
            "Short-link requests by outcome",
            ["outcome"],
            registry=registry,
        )
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="redirects", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self.server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _click(self, path: str, referrer: str, user_agent: str = "") -> str | None:
        """The tracked URL for ``path``, after emitting the click (not for a preview
        fetcher); None when unknown."""
        match = _PATH.fullmatch(urlsplit(path).path)
        found = self.book.link(match.group(1)) if match else None
        if found is None:
            self.clicks.labels(outcome="unknown").inc()
            return None
        post, link = found
        if is_preview_fetch(user_agent):
            self.clicks.labels(outcome="preview").inc()
            return link.tracked_url
        envelope = click_envelope(post, link, referrer, self.clock())
        try:
            self.producer.send_and_wait([(LINK_CLICKS_TOPIC, post.post_id, envelope)])
            self.clicks.labels(outcome="redirected").inc()
        except Exception:
            log.exception("click event not produced", extra={"code": link.code})
            self.clicks.labels(outcome="event_lost").inc()
        return link.tracked_url

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                target = outer._click(
                    self.path, self.headers.get("Referer", ""), self.headers.get("User-Agent", "")
                )
                if target is None:
                    self.send_error(404, "unknown short link")
                    return
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_HEAD(self) -> None:
                self.send_response(405)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                log.debug("redirect request", extra={"line": format % args})

        return Handler
