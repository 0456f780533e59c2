"""How each source of each tracked issue is doing, for ``ListSources`` (memory only: it
starts empty when the listener starts)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from legation.events.v1 import listen_pb2
from legation_core.ids import stable_id
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
    # The first failure of the current run of failures (None after a read that worked).
    failing_since: datetime | None = None


def health_change(
    before: SourceState, after: SourceState, failing_after: int
) -> listen_pb2.SourceHealth | None:
    """The ``SourceHealth`` event one outcome makes, if any: FAILING when the source has just
    failed ``failing_after`` reads in a row (once per run of failures: a source that keeps
    failing says so once), RECOVERED at the first read that worked after such a run."""
    if after.state == FAILING and after.consecutive_failures == failing_after:
        state = listen_pb2.SourceHealth.STATE_FAILING
        since = after.failing_since
    elif (
        after.state == OK
        and before.state in (FAILING, RATE_LIMITED)
        and before.consecutive_failures >= failing_after
    ):
        state = listen_pb2.SourceHealth.STATE_RECOVERED
        since = before.failing_since
    else:
        return None
    at = after.last_attempt_at
    health = listen_pb2.SourceHealth(
        health_id=stable_id(
            "source-health",
            after.issue_id,
            after.source,
            str(state),
            since.isoformat() if since else "",
        ),
        issue_id=after.issue_id,
        source=after.source,
        kind=after.kind,
        state=state,
        consecutive_failures=before.consecutive_failures
        if state == listen_pb2.SourceHealth.STATE_RECOVERED
        else after.consecutive_failures,
        last_error=(after.last_error or before.last_error)[:1000],
    )
    if since is not None:
        health.first_failed_at.FromDatetime(since)
    if after.last_success_at is not None:
        health.last_success_at.FromDatetime(after.last_success_at)
    if at is not None:
        health.at.FromDatetime(at)
    return health


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
    ) -> tuple[SourceState, SourceState]:
        """A read (or push) of ``items`` items worked; ``malformed`` were skipped. Returns
        the source's state before and after."""
        problems = tuple(malformed)
        with self._lock:
            now = self._get(issue_id, source)
            after = self._states[(issue_id, source)] = replace(
                now,
                state=OK,
                last_attempt_at=at,
                last_success_at=at,
                last_error="",
                consecutive_failures=0,
                not_before=None,
                failing_since=None,
                items_read=now.items_read + items,
                malformed_items=now.malformed_items + len(problems),
                malformed=(*now.malformed, *problems)[-MALFORMED_KEPT:],
            )
        return now, after

    def failed(
        self,
        issue_id: str,
        source: str,
        at: datetime,
        error: str,
        *,
        rate_limited: bool = False,
        not_before: datetime | None = None,
    ) -> tuple[SourceState, SourceState]:
        """A read failed with ``error`` (the source asked us to wait: ``rate_limited``, until
        ``not_before`` when it said). Returns the source's state before and after."""
        with self._lock:
            now = self._get(issue_id, source)
            after = self._states[(issue_id, source)] = replace(
                now,
                state=RATE_LIMITED if rate_limited else FAILING,
                last_attempt_at=at,
                last_error=error,
                consecutive_failures=now.consecutive_failures + 1,
                not_before=not_before,
                failing_since=now.failing_since or at,
            )
        return now, after

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
