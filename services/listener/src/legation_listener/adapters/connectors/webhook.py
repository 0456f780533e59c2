"""Items we do not poll: pushed to the listener's webhook, or imported from a JSONL file.

``POST /webhooks/<name>`` carries one item (a JSON object), several (a JSON array) or one
item per line (JSONL, ``application/x-ndjson``), signed with HMAC-SHA256 over the raw body
with the shared secret: ``X-Legation-Signature: sha256=<hex>``. Every issue that lists
``webhook:<name>`` among its sources gets the items that match it. ``legation-listener-import``
posts a JSONL file the same way, in batches.

An item: ``id`` (required, the item's id at its source), ``text`` and/or ``title`` (one is
required), ``published_at`` (ISO 8601; the time of receipt when absent), ``url``,
``author``, ``author_id``, ``language``, ``in_reply_to``, ``thread_id``, ``reach``
(integer ≥ 0). A malformed item (or line) is reported with its number and the field, and
the others are taken; so is an item over the size limits of
:mod:`~legation_listener.domain.items`.

Limits, checked before the body is read or parsed: at most :data:`MAX_BODY_BYTES` (the
declared ``Content-Length``; a chunked body is read up to one byte past the limit, never
further), JSON nested at most :data:`MAX_JSON_DEPTH` levels. Answers: 413 for a body over
the limit, 400 for a malformed ``Content-Length`` or a body nested too deep (neither is
worth sending again as is).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from wsgiref.types import StartResponse, WSGIEnvironment

from legation_core.http_server import HttpError, json_depth_exceeds, read_body
from legation_listener.adapters.connectors.base import parse_time, utc_now
from legation_listener.domain.items import FeedItem, make_feed_item
from legation_listener.domain.sources import WEBHOOK

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Legation-Signature"
MAX_BODY_BYTES = 10 * 1024 * 1024
"""Most bytes of one request body (a larger one is refused with 413: send smaller batches)."""
MAX_JSON_DEPTH = 32
"""Most levels of nesting of arrays and objects in a body (an item is an object in an
optional array: 2 levels, plus whatever its fields hold)."""
_STRING_FIELDS = (
    "id",
    "text",
    "title",
    "url",
    "author",
    "author_id",
    "language",
    "in_reply_to",
    "thread_id",
    "published_at",
)


def sign(secret: str, body: bytes) -> str:
    """The signature header value of ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str) -> bool:
    """True when ``header`` is the signature of ``body`` (compared in constant time); a
    header with characters beyond ASCII is simply not the signature."""
    # As bytes: compare_digest refuses str with characters beyond ASCII (a TypeError).
    given = header.strip().encode("utf-8", "surrogatepass")
    return bool(secret) and hmac.compare_digest(sign(secret, body).encode(), given)


def item_from_json(value: Any, received_at: datetime) -> FeedItem:
    """One pushed item as a :class:`FeedItem`; ValueError naming the field otherwise."""
    if not isinstance(value, Mapping):
        raise ValueError(f"an item is a JSON object, got {type(value).__name__}")
    for name in _STRING_FIELDS:
        if name in value and value[name] is not None and not isinstance(value[name], str):
            raise ValueError(f"'{name}' is not a string")
    item_id = str(value.get("id") or "").strip()
    if not item_id:
        raise ValueError("'id' is required")
    title, text = str(value.get("title") or ""), str(value.get("text") or "")
    if not title.strip() and not text.strip():
        raise ValueError(f"{item_id}: 'text' or 'title' is required")
    published = None
    if value.get("published_at"):
        published = parse_time(value["published_at"])
        if published is None:
            raise ValueError(f"{item_id}: 'published_at' is not an ISO 8601 time")
    reach = value.get("reach", 0)
    if not isinstance(reach, int) or isinstance(reach, bool) or reach < 0:
        raise ValueError(f"{item_id}: 'reach' is not an integer >= 0")
    return make_feed_item(
        item_id=item_id,
        url=str(value.get("url") or ""),
        title=title,
        body=text,
        author=str(value.get("author") or ""),
        published_at=published,
        declared_language=str(value.get("language") or ""),
        fetched_at=received_at,
        source=WEBHOOK,
        author_id=str(value.get("author_id") or ""),
        in_reply_to=str(value.get("in_reply_to") or ""),
        thread_id=str(value.get("thread_id") or ""),
        reach=reach,
    )


def parse_items(body: bytes, received_at: datetime) -> tuple[list[FeedItem], list[str]]:
    """The items of a body (a JSON object, a JSON array, or JSONL) and one problem per
    item or line that is malformed (numbered from 1); ``HttpError`` (400) for a body nested
    deeper than :data:`MAX_JSON_DEPTH`."""
    if json_depth_exceeds(body, MAX_JSON_DEPTH):
        raise HttpError(
            "400 Bad Request",
            f"the body nests arrays and objects deeper than the limit of {MAX_JSON_DEPTH}",
        )
    text = body.decode("utf-8", errors="replace")
    values: list[tuple[str, Any]] = []
    problems: list[str] = []
    try:
        document = json.loads(text)
    except ValueError:
        document = None
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                values.append((f"line {number}", json.loads(line)))
            except ValueError as error:
                problems.append(f"line {number}: not JSON ({error.args[0].split(':')[0]})")
    else:
        if isinstance(document, list):
            values = [(f"item {n}", v) for n, v in enumerate(document, start=1)]
        else:
            values = [("item 1", document)]
    items: list[FeedItem] = []
    for where, value in values:
        try:
            items.append(item_from_json(value, received_at))
        except ValueError as error:
            problems.append(f"{where}: {error}")
    return items, problems


@dataclass
class IngestResult:
    """What one push did: items taken, mentions acknowledged by Kafka, issues that watch
    the source, and one problem per malformed item."""

    items: int = 0
    mentions: int = 0
    issues: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)


class Ingest(Protocol):
    """Takes pushed items for ``webhook:<name>`` (the poller); raises LookupError when no
    active issue watches the source."""

    def ingest(self, source: str, items: list[FeedItem], malformed: list[str]) -> IngestResult: ...


class WebhookApp:
    """The WSGI application of the webhook (served by the runtime without a users-file
    token: the HMAC signature is the authentication)."""

    def __init__(
        self,
        ingest: Ingest,
        secret: str,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if not secret:
            raise ValueError("the webhook needs a secret")
        self.ingest = ingest
        self.secret = secret
        self.max_body_bytes = max_body_bytes
        self.clock = clock

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", "/"))
        if path == "/healthz":
            return _answer(start_response, "200 OK", {"ok": True})
        name = path.removeprefix("/webhooks/")
        if not path.startswith("/webhooks/") or not name or "/" in name:
            return _answer(start_response, "404 Not Found", {"error": "POST /webhooks/<name>"})
        if environ.get("REQUEST_METHOD") != "POST":
            return _answer(start_response, "405 Method Not Allowed", {"error": "POST only"})
        try:
            body = read_body(environ, self.max_body_bytes)
        except HttpError as refused:
            return _answer(start_response, refused.status, {"error": refused.reason})
        if not signature_ok(self.secret, body, str(environ.get("HTTP_X_LEGATION_SIGNATURE", ""))):
            return _answer(
                start_response,
                "401 Unauthorized",
                {"error": f"{SIGNATURE_HEADER} is missing or does not sign the body"},
            )
        try:
            items, problems = parse_items(body, self.clock())
        except HttpError as refused:
            return _answer(start_response, refused.status, {"error": refused.reason})
        if not items and problems:
            return _answer(
                start_response, "400 Bad Request", {"error": "no valid item", "malformed": problems}
            )
        try:
            result = self.ingest.ingest(f"{WEBHOOK}:{name}", items, problems)
        except LookupError as error:
            return _answer(start_response, "404 Not Found", {"error": str(error)})
        except Exception:  # Kafka did not acknowledge: the sender retries; the log says why
            log.warning("webhook items not delivered", exc_info=True, extra={"source": name})
            return _answer(
                start_response,
                "503 Service Unavailable",
                {"error": "not delivered now; send the same body again"},
            )
        return _answer(
            start_response,
            "200 OK",
            {
                "items": result.items,
                "mentions": result.mentions,
                "issues": result.issues,
                "malformed": result.malformed,
            },
        )


def _answer(start_response: StartResponse, status: str, payload: object) -> list[bytes]:
    data = json.dumps(payload).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
