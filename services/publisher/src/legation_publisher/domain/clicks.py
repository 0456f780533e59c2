"""Which short-link requests count as a reader's click, and the identity of a click. Plain
functions and one in-memory gate with an injected clock; no I/O.

A click counts at most once per **visitor, link and window** (a UTC day by default):

- the visitor is a fingerprint, an HMAC of the client's address and User-Agent under a salt
  that changes every UTC day (itself an HMAC of the day under the service's secret), so no
  address is kept, and yesterday's fingerprints cannot be linked to today's;
- the click's event id is derived from (link, fingerprint, window), so every click of one
  visitor on one link in one window is the same event, and the evaluator's index (one
  document per event id) holds it once, whichever replica answered and however often it was
  produced. That needs no state shared between replicas, only the same secret;
- obvious robots are redirected but not counted: HEAD requests, no User-Agent, link-preview
  fetchers, crawlers and scripted HTTP clients (curl, python-requests, ...);
- beyond ``per_address`` counted clicks per ``per_address_period_seconds`` from one address
  (hashed like the fingerprint), clicks are redirected but not counted, so a script that
  changes its User-Agent at every request still moves a campaign by at most that much. This
  limit is per replica (in memory).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from legation_core.ids import stable_id
from legation_core.ratelimit import RateLimit

COUNTED = "counted"
DUPLICATE = "duplicate"
RATE_LIMITED = "rate_limited"
HEAD = "head"
NO_USER_AGENT = "no_user_agent"
BOT = "bot"

DAY_SECONDS = 86_400

# Link-preview fetchers, crawlers and scripted clients, by their User-Agent: every Mastodon
# server our post federates to fetches its links for a preview card ("http.rb/5.1.1
# (Mastodon/4.2.0; +https://social.example/) Bot"), as do Bluesky ("Bluesky Cardyb"),
# Telegram ("TelegramBot (like TwitterBot)"), Slack, Facebook, WhatsApp and search engines;
# command-line and library HTTP clients are scripts. They are redirected but are not
# readers' clicks. "bot" counts as a word or before / ) ; - only, so a phone model such as
# "CUBOT X30" is a reader.
_NOT_A_READER = re.compile(
    r"\bbot\b|bot[/);-]|crawler|spider|mastodon/|cardyb|facebookexternalhit|whatsapp"
    r"|skypeuripreview|embedly|preview"
    r"|^curl/|^wget/|python-requests|python-urllib|python-httpx|aiohttp|go-http-client"
    r"|^java/|okhttp|libwww-perl|node-fetch|axios/|scrapy|httpie|headlesschrome|phantomjs",
    re.IGNORECASE,
)


def is_preview_fetch(user_agent: str) -> bool:
    """True when ``user_agent`` is a link-preview fetcher, a crawler or a scripted HTTP
    client, not a reader's browser."""
    return bool(_NOT_A_READER.search(user_agent))


def automated(method: str, user_agent: str) -> str | None:
    """Why a request is not a reader's click (:data:`HEAD`, :data:`NO_USER_AGENT`,
    :data:`BOT`), or None for what looks like a reader."""
    if method == "HEAD":
        return HEAD
    if not user_agent.strip():
        return NO_USER_AGENT
    if is_preview_fetch(user_agent):
        return BOT
    return None


def day_salt(secret: bytes, day: date) -> bytes:
    """The salt of one UTC day: derived from ``secret``, different every day."""
    return hmac.new(secret, f"legation-clicks:{day.isoformat()}".encode(), hashlib.sha256).digest()


def visitor_hash(secret: bytes, day: date, address: str, user_agent: str) -> str:
    """The visitor's fingerprint on ``day``: a salted hash of address and User-Agent."""
    message = f"visitor\x1f{address}\x1f{user_agent}".encode()
    return hmac.new(day_salt(secret, day), message, hashlib.sha256).hexdigest()[:32]


def address_hash(secret: bytes, day: date, address: str) -> str:
    """The client address's salted hash on ``day`` (the key of the per-address limit)."""
    message = f"address\x1f{address}".encode()
    return hmac.new(day_salt(secret, day), message, hashlib.sha256).hexdigest()[:32]


def window_start(now: datetime, window_seconds: int) -> datetime:
    """The start of the window ``now`` falls in; windows are aligned on UTC midnight."""
    epoch = int(now.timestamp())
    return datetime.fromtimestamp(epoch - epoch % window_seconds, UTC)


def click_id(code: str, visitor: str, window: datetime) -> str:
    """The LinkClick event id of ``visitor`` following link ``code`` in ``window``."""
    return stable_id("link-click", code, visitor, window.isoformat())


@dataclass(frozen=True)
class ClickPolicy:
    """How clicks are counted. ``window_seconds`` divides a day (so a window never spans
    two daily salts); ``per_address`` counted clicks per ``per_address_period_seconds``."""

    window_seconds: int = DAY_SECONDS
    per_address: int = 60
    per_address_period_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if not 60 <= self.window_seconds <= DAY_SECONDS or DAY_SECONDS % self.window_seconds:
            raise ValueError("window_seconds: a divisor of 86400 between 60 and 86400")


@dataclass(frozen=True)
class Decision:
    """What to do with one short-link request: ``verdict`` is :data:`COUNTED` (emit the
    click ``click_id``) or why it is not counted."""

    verdict: str
    click_id: str = ""


class ClickGate:
    """Decides per request whether a click counts (see the module's docstring). Keeps the
    most recent ``remember`` click ids it emitted, so a repeated click is not even produced
    again by this replica; the deterministic id makes a repeat harmless anyway."""

    def __init__(
        self,
        secret: bytes,
        policy: ClickPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        remember: int = 100_000,
    ) -> None:
        self.secret = secret
        self.policy = policy or ClickPolicy()
        self.clock = clock
        self.remember = remember
        self._per_address = RateLimit(
            self.policy.per_address,
            self.policy.per_address_period_seconds,
            clock=lambda: self.clock().timestamp(),
        )
        self._lock = threading.Lock()
        self._emitted: OrderedDict[str, None] = OrderedDict()

    def decide(self, code: str, method: str, address: str, user_agent: str) -> Decision:
        """The decision for a request for link ``code`` from ``address`` with
        ``user_agent`` (the address is only hashed)."""
        reason = automated(method, user_agent)
        if reason is not None:
            return Decision(reason)
        now = self.clock()
        day = now.astimezone(UTC).date()
        visitor = visitor_hash(self.secret, day, address, user_agent)
        click = click_id(code, visitor, window_start(now, self.policy.window_seconds))
        with self._lock:
            if click in self._emitted:
                self._emitted.move_to_end(click)
                return Decision(DUPLICATE)
        if self._per_address.wait(address_hash(self.secret, day, address)):
            return Decision(RATE_LIMITED)
        return Decision(COUNTED, click)

    def emitted(self, click: str) -> None:
        """Records that ``click`` reached the broker (a click whose event was lost is not
        recorded, so the reader's next try counts)."""
        with self._lock:
            self._emitted[click] = None
            self._emitted.move_to_end(click)
            while len(self._emitted) > self.remember:
                self._emitted.popitem(last=False)
