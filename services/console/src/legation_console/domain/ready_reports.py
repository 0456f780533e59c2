"""Reports drawn while a person watched their progress, kept a few minutes for the download
link the progress ends with. No I/O: a bounded map with a clock.

The console otherwise keeps no state: a link whose report this replica does not hold (another
replica drew it, it expired, the console restarted) is served by drawing the report again,
so the store only saves that second drawing."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# At most this many reports, and this many bytes in all, are kept; the oldest go first.
MAX_REPORTS = 20
MAX_BYTES = 100_000_000
KEEP_SECONDS = 600.0


@dataclass(frozen=True)
class ReadyReport:
    """A drawn report and whom it was drawn for."""

    username: str
    campaign_id: str
    format_key: str
    file_name: str
    content: bytes
    made_at: float


class ReadyReports:
    """Reports by an unguessable token, for the person who drew them only."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        keep_seconds: float = KEEP_SECONDS,
        max_reports: int = MAX_REPORTS,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self._clock = clock
        self._keep = keep_seconds
        self._max_reports = max_reports
        self._max_bytes = max_bytes
        self._reports: OrderedDict[str, ReadyReport] = OrderedDict()

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, r in self._reports.items() if now - r.made_at > self._keep]:
            del self._reports[token]
        while len(self._reports) > self._max_reports or (
            self._reports and sum(len(r.content) for r in self._reports.values()) > self._max_bytes
        ):
            self._reports.popitem(last=False)

    def put(
        self, username: str, campaign_id: str, format_key: str, file_name: str, content: bytes
    ) -> str:
        """Keeps the report; returns its token (empty when it is too big to keep)."""
        if len(content) > self._max_bytes:
            return ""
        token = secrets.token_urlsafe(24)
        self._reports[token] = ReadyReport(
            username, campaign_id, format_key, file_name, content, self._clock()
        )
        self._expire()
        return token if token in self._reports else ""

    def get(
        self, token: str, username: str, campaign_id: str, format_key: str
    ) -> ReadyReport | None:
        """The report of ``token`` if it is still kept and was drawn for this person,
        campaign and format; None otherwise."""
        self._expire()
        found = self._reports.get(token)
        if found is None or (found.username, found.campaign_id, found.format_key) != (
            username,
            campaign_id,
            format_key,
        ):
            return None
        return found
