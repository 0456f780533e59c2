"""How each source of each tracked issue is doing, for ``ListSources`` (memory only: it
starts empty when the listener starts)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from legation_listener.domain.sources import source_kind

OK = "ok"
FAILING = "failing"
RATE_LIMITED = "rate_limited"
UNREAD = "unread"
# Malformed-item reports kept per source (the newest).
MALFORMED_KEPT = 20


@dataclass(frozen=True)
class SourceState:
    """One source of one issue."""

    issue_id: str
    source: str
    kind: str
    state: str = UNREAD
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str = ""
    consecutive_failures: int = 0
    items_read: int = 0
    malformed_items: int = 0
    malformed: tuple[str, ...] = field(default=())
    not_before: datetime | None = None


class SourceStatusBook:
    """Source states keyed by (issue id, source); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], SourceState] = {}

    def _get(self, issue_id: str, source: str) -> SourceState:
        return self._states.get(
            (issue_id, source), SourceState(issue_id, source, source_kind(source))
        )

    def succeeded(
        self, issue_id: str, source: str, at: datetime, items: int, malformed: Iterable[str] = ()
    ) -> None:
        """A read (or push) of ``items`` items worked; ``malformed`` were skipped."""
        problems = tuple(malformed)
        with self._lock:
            now = self._get(issue_id, source)
            self._states[(issue_id, source)] = replace(
                now,
                state=OK,
                last_attempt_at=at,
                last_success_at=at,
                last_error="",
                consecutive_failures=0,
                not_before=None,
                items_read=now.items_read + items,
                malformed_items=now.malformed_items + len(problems),
                malformed=(*now.malformed, *problems)[-MALFORMED_KEPT:],
            )

    def failed(
        self,
        issue_id: str,
        source: str,
        at: datetime,
        error: str,
        *,
        rate_limited: bool = False,
        not_before: datetime | None = None,
    ) -> None:
        """A read failed with ``error`` (the source asked us to wait: ``rate_limited``, until
        ``not_before`` when it said)."""
        with self._lock:
            now = self._get(issue_id, source)
            self._states[(issue_id, source)] = replace(
                now,
                state=RATE_LIMITED if rate_limited else FAILING,
                last_attempt_at=at,
                last_error=error,
                consecutive_failures=now.consecutive_failures + 1,
                not_before=not_before,
            )

    def deferred(self, issue_id: str, source: str, reason: str, until: datetime) -> None:
        """A poll skipped the source: it is rate limited until ``until``."""
        with self._lock:
            now = self._get(issue_id, source)
            self._states[(issue_id, source)] = replace(
                now, state=RATE_LIMITED, last_error=reason, not_before=until
            )

    def states(self, sources: Iterable[tuple[str, str]]) -> list[SourceState]:
        """The states of the given (issue id, source) pairs, in that order (unread when
        never read since start-up)."""
        with self._lock:
            return [self._get(issue_id, source) for issue_id, source in sources]
