"""Where events go: a file of JSON lines or CSV rows, or a signed HTTP webhook.

A sink takes a batch and returns only once the batch is durable (flushed and synced, or
acknowledged by the receiver with a 2xx); only then does the subscriber commit. A failure
a retry may fix raises :class:`RetryLater` (the subscriber keeps the batch and retries with
backoff); a receiver refusing one event for good (a 4xx other than 408 and 429) raises
:class:`Refused` for that event, which becomes a dead letter.

**Webhook signature.** Each POST carries ``X-Legation-Signature: t=<unix seconds>,v1=<hex
HMAC-SHA256 of "<t>.<body>" under the shared secret>``, plus ``X-Legation-Event-Id`` (use
it to deduplicate: delivery is at least once) and ``X-Legation-Topic``. A receiver checks
it with :func:`verify_signature`, which also refuses a signature older than five minutes
(a replayed request).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import http.client
import io
import os
import time
from collections.abc import Callable, Sequence
from typing import IO, Protocol
from urllib.parse import urlsplit

from legation_subscribe.events import CSV_COLUMNS, Event

SIGNATURE_HEADER = "X-Legation-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
# An answer a retry may change: the receiver is busy or down, or timed out.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class RetryLater(Exception):
    """The batch could not be delivered now; the subscriber retries it with backoff from the
    first event not delivered (``done``: how many of the batch were, before the failure)."""

    def __init__(self, reason: str, done: int = 0) -> None:
        super().__init__(reason)
        self.done = done


class Refused(Exception):
    """The receiver refused one event for good: it becomes a dead letter."""

    def __init__(self, event: Event, reason: str) -> None:
        super().__init__(reason)
        self.event = event
        self.reason = reason


class Sink(Protocol):
    """Delivers a batch durably (see the module docstring)."""

    def deliver(self, events: Sequence[Event]) -> None: ...

    def close(self) -> None: ...


class HandlerSink:
    """Calls a Python function with each typed event (the library's own use). The handler
    raises :class:`RetryLater` (or ``ConnectionError``, ``TimeoutError``) for a failure a
    retry may fix; any other exception makes that event a dead letter."""

    def __init__(self, handler: Callable[[Event], None]) -> None:
        self.handler = handler

    def deliver(self, events: Sequence[Event]) -> None:
        for done, event in enumerate(events):
            try:
                self.handler(event)
            except (RetryLater, ConnectionError, TimeoutError) as error:
                raise RetryLater(f"handler: {type(error).__name__}: {error}", done) from error
            except Exception as error:
                raise Refused(event, f"handler failed: {type(error).__name__}: {error}") from error

    def close(self) -> None:
        return None


class _FileSink:
    def __init__(self, stream: IO[str], sync: bool) -> None:
        self.stream = stream
        self.sync = sync

    def _flush(self) -> None:
        self.stream.flush()
        if self.sync:
            os.fsync(self.stream.fileno())

    def close(self) -> None:
        self._flush()
        if self.stream.fileno() > 2:
            self.stream.close()


class JsonLinesSink(_FileSink):
    """One JSON object per line (:meth:`Event.to_dict`), flushed and synced per batch."""

    def deliver(self, events: Sequence[Event]) -> None:
        self.stream.write("".join(event.to_json_line() for event in events))
        self._flush()


class CsvSink(_FileSink):
    """CSV rows of :data:`CSV_COLUMNS` (a header row first when the file is new)."""

    def __init__(self, stream: IO[str], sync: bool, header: bool) -> None:
        super().__init__(stream, sync)
        if header:
            csv.writer(stream).writerow(CSV_COLUMNS)

    def deliver(self, events: Sequence[Event]) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerows(event.to_csv_row() for event in events)
        self.stream.write(buffer.getvalue())
        self._flush()


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The value of the signature header for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: bytes,
    header: str,
    body: bytes,
    now: float | None = None,
    tolerance: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """True when ``header`` signs ``body`` under ``secret`` and is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookSink:
    """POSTs each event as JSON to the department's own endpoint, signed."""

    def __init__(self, url: str, secret: bytes, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook url must be http(s)://host/...: {url!r}")
        if len(secret) < 16:
            raise ValueError("the webhook secret must have at least 16 bytes")
        self.url = url
        self._parts = parts
        self._secret = secret
        self._timeout = timeout
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = (
                http.client.HTTPSConnection
                if self._parts.scheme == "https"
                else http.client.HTTPConnection
            )
            self._connection = kind(
                self._parts.hostname or "", self._parts.port, timeout=self._timeout
            )
        return self._connection

    def deliver(self, events: Sequence[Event]) -> None:
        for done, event in enumerate(events):
            try:
                self._post(event)
            except RetryLater as error:
                raise RetryLater(str(error), done) from None

    def _post(self, event: Event) -> None:
        body = event.to_json_line().encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
            "X-Legation-Event-Id": event.envelope.event_id,
            "X-Legation-Topic": event.topic,
        }
        path = (self._parts.path or "/") + (f"?{self._parts.query}" if self._parts.query else "")
        try:
            connection = self._connect()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise RetryLater(f"webhook unreachable: {error}") from None
        if 200 <= response.status < 300:
            return
        if response.status in RETRY_STATUSES:
            raise RetryLater(f"webhook answered {response.status}")
        raise Refused(event, f"webhook refused the event: HTTP {response.status}")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
