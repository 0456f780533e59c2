"""Which campaigns just had events indexed: the indexing consumer tells, scorecard watchers
listen, so a watched scorecard is recomputed when its events arrive instead of by polling
the index."""

from __future__ import annotations

import threading
from collections.abc import Iterable


class ChangeFeed:
    """A version counter per campaign, bumped each time a bulk holding one of its events
    is acknowledged by the index."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._versions: dict[str, int] = {}

    def publish(self, campaign_ids: Iterable[str]) -> None:
        with self._changed:
            for campaign_id in set(campaign_ids):
                self._versions[campaign_id] = self._versions.get(campaign_id, 0) + 1
            self._changed.notify_all()

    def version(self, campaign_id: str) -> int:
        with self._changed:
            return self._versions.get(campaign_id, 0)

    def wait(self, campaign_id: str, seen: int, timeout: float) -> int:
        """Waits up to ``timeout`` seconds for the campaign's version to move past
        ``seen``; returns the version then (``seen`` when nothing changed)."""
        with self._changed:
            self._changed.wait_for(lambda: self._versions.get(campaign_id, 0) != seen, timeout)
            return self._versions.get(campaign_id, 0)
