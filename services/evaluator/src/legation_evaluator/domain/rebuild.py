"""Whether the index still holds what Kafka holds, and who rebuilds it when it does not.

A marker document beside the event indices says so. The evaluator writes it "complete"
once a rebuild from Kafka has finished; an index server that lost its data (restarted
empty, restored from nothing, indices deleted) has lost the marker too, and a marker that
is missing means: rebuild. The marker is also the lease of the one evaluator replica doing
the rebuild ("rebuilding", its token and a heartbeat): the others see it and wait, and take
over only when the heartbeat has stopped. Plain data and decisions here; the adapter
(``adapters/rebuild.py``) reads and writes the marker with compare-and-set.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from legation_core.catalog import Catalog

REBUILDING = "rebuilding"
COMPLETE = "complete"


@dataclass(frozen=True)
class Marker:
    """The marker document."""

    state: str  # REBUILDING or COMPLETE
    token: str  # the rebuild this marker belongs to (a fresh id per rebuild)
    owner: str  # who rebuilds (host and process), for people reading it
    heartbeat: float  # seconds since the epoch, renewed while rebuilding
    started_at: float
    completed_at: float | None = None
    events: int = 0  # events re-indexed so far (or in all, once complete)

    def body(self) -> dict[str, Any]:
        return asdict(self)


def marker_from(source: Mapping[str, Any]) -> Marker | None:
    """The marker in a document's source, None when it is not one (a foreign document
    under the marker's id counts as missing: the index is not ours to trust)."""
    try:
        state = str(source["state"])
        if state not in (REBUILDING, COMPLETE):
            return None
        completed = source.get("completed_at")
        return Marker(
            state=state,
            token=str(source["token"]),
            owner=str(source.get("owner", "")),
            heartbeat=float(source["heartbeat"]),
            started_at=float(source["started_at"]),
            completed_at=float(completed) if completed is not None else None,
            events=int(source.get("events", 0)),
        )
    except (KeyError, TypeError, ValueError):
        return None


class Verdict(enum.Enum):
    """What an evaluator replica does about the marker it read."""

    READY = "ready"  # complete: the index holds what Kafka holds
    CLAIM = "claim"  # missing: the data is gone (or was never built); claim the rebuild
    TAKE_OVER = "take over"  # rebuilding, but its owner stopped beating: take it over
    OURS = "ours"  # rebuilding, by us
    ELSEWHERE = "elsewhere"  # rebuilding, by another replica that is alive


def verdict(marker: Marker | None, own_token: str | None, now: float, lease: float) -> Verdict:
    """The decision for ``marker`` (None: missing) read at ``now`` by a replica rebuilding
    under ``own_token`` (None: not rebuilding). A rebuild whose heartbeat is older than
    ``lease`` seconds is taken to be dead."""
    if marker is None:
        return Verdict.CLAIM
    if marker.state == COMPLETE:
        return Verdict.READY
    if own_token is not None and marker.token == own_token:
        return Verdict.OURS
    if now - marker.heartbeat > lease:
        return Verdict.TAKE_OVER
    return Verdict.ELSEWHERE


def marker_index(prefix: str) -> str:
    """The marker's index: beside the event indices, outside their ``<prefix>-*`` pattern
    (scorecards, reports and dashboards never see it)."""
    return f"{prefix}.marker"


def rebuild_passes(catalog: Catalog, topics: Sequence[str]) -> list[list[str]]:
    """``topics`` in the order a rebuild reads them: first those kept forever (campaigns,
    feedback, reviews, tracked issues: small, and what a scorecard needs to exist), then
    the rest (mentions, interactions, ... the bulk of the events)."""
    forever = {
        spec.name
        for spec in catalog.consumed_by("evaluator")
        if not (spec.cleanup_policy == "delete" and spec.retention_ms > 0)
    }
    first = [topic for topic in topics if topic in forever]
    rest = [topic for topic in topics if topic not in forever]
    return [group for group in (first, rest) if group]
