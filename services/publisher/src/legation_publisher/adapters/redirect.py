"""The short-link endpoint: ``GET /r/<code>`` answers 302 to the tracked URL and, when the
request is a reader's click that counts, emits a LinkClick for the evaluator. A WSGI app,
served by the service runtime (TLS, timeouts and the generic 500 of
:mod:`legation_core.http_server`).

Whether a click counts is :mod:`legation_publisher.domain.clicks`: once per visitor, link
and window (its event id says so, so the index holds it once whichever replica answered),
never for robots (HEAD, no User-Agent, link-preview fetchers, crawlers, scripts), and not
beyond a per-address limit. Every request is redirected all the same: a reader never pays
for our counting. The click event is produced and acknowledged before the redirect is
answered; when Kafka cannot take it the reader is still redirected, and the lost click is
logged and counted in ``legation_publisher_link_clicks_total{outcome="event_lost"}``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit
from wsgiref.types import StartResponse, WSGIEnvironment

from prometheus_client import CollectorRegistry, Counter

from legation.events.v1 import publish_pb2
from legation_core.codec import Envelope, make_envelope
from legation_core.http_server import client_address, plain
from legation_core.networks import Network
from legation_core.topic_names import PUBLISH_LINK_CLICKS_V1
from legation_publisher.adapters.sink import EventSink
from legation_publisher.adapters.state import PostBook
from legation_publisher.domain.clicks import COUNTED, ClickGate
from legation_publisher.domain.posts import SERVICE

log = logging.getLogger(__name__)

_PATH = re.compile(r"/r/([A-Za-z0-9_-]{1,32})/?")


def click_envelope(
    post: publish_pb2.PostState,
    link: publish_pb2.TrackedLink,
    referrer: str,
    now: datetime,
    click_id: str,
) -> Envelope:
    """The LinkClick event ``click_id`` (deterministic: see
    :func:`~legation_publisher.domain.clicks.click_id`)."""
    click = publish_pb2.LinkClick(
        click_id=click_id,
        code=link.code,
        post_id=post.post_id,
        language=link.language,
        channel=link.channel,
        target_url=link.target_url,
        referrer_host=_host(referrer),
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


def _host(referrer: str) -> str:
    try:
        return (urlsplit(referrer).hostname or "")[:253] if referrer else ""
    except ValueError:  # an ill-formed URL (an unclosed IPv6 bracket) names no host
        return ""


class ShortLinks:
    """WSGI app of the short links, public on purpose. ``trusted_proxies``: the reverse
    proxies whose ``X-Forwarded-For`` names the reader (see
    :func:`~legation_core.http_server.client_address`)."""

    def __init__(
        self,
        book: PostBook,
        producer: EventSink,
        gate: ClickGate,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self.book = book
        self.producer = producer
        self.gate = gate
        self.clock = clock
        self.trusted_proxies = tuple(trusted_proxies)
        self.clicks = Counter(
            "legation_publisher_link_clicks_total",
            "Short-link requests by outcome: redirected (a counted click), duplicate, "
            "rate_limited, head, no_user_agent, bot (redirected, not counted), event_lost, "
            "unknown",
            ["outcome"],
            registry=registry,
        )

    def __call__(self, environ: WSGIEnvironment, start: StartResponse) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", ""))
        if method not in ("GET", "HEAD"):
            return plain(start, "405 Method Not Allowed", "GET only", [("Allow", "GET, HEAD")])
        match = _PATH.fullmatch(str(environ.get("PATH_INFO", "")))
        found = self.book.link(match.group(1)) if match else None
        if found is None:
            self.clicks.labels(outcome="unknown").inc()
            return plain(start, "404 Not Found", "unknown short link")
        post, link = found
        decision = self.gate.decide(
            link.code,
            method,
            client_address(environ, self.trusted_proxies),
            str(environ.get("HTTP_USER_AGENT", "")),
        )
        if decision.verdict == COUNTED:
            self._emit(post, link, str(environ.get("HTTP_REFERER", "")), decision.click_id)
        else:
            self.clicks.labels(outcome=decision.verdict).inc()
        start(
            "302 Found",
            [
                ("Location", link.tracked_url),
                ("Cache-Control", "no-store"),
                ("Content-Length", "0"),
            ],
        )
        return [b""]

    def _emit(
        self,
        post: publish_pb2.PostState,
        link: publish_pb2.TrackedLink,
        referrer: str,
        click_id: str,
    ) -> None:
        envelope = click_envelope(post, link, referrer, self.clock(), click_id)
        try:
            self.producer.send_and_wait([(PUBLISH_LINK_CLICKS_V1, post.post_id, envelope)])
        except Exception:
            log.exception("click event not produced", extra={"code": link.code})
            self.clicks.labels(outcome="event_lost").inc()
            return
        self.gate.emitted(click_id)
        self.clicks.labels(outcome="redirected").inc()
