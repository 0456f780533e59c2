"""Periodic KPI snapshots: every campaign's scorecard as a KpiSnapshot event.

Each campaign stands alone: one whose scorecard or snapshot fails (a search error, a
record the broker refuses) is logged and the others are still emitted. A snapshot too large
for one record is split into parts (``domain/snapshots.py``), and an objective that fits in
no record is logged and left out, so no single record exceeds the producer's limit
(``LEGATION_KAFKA_MAX_REQUEST_BYTES``). While
the index is being rebuilt from Kafka no snapshot is taken: it would record counts that are
still coming back.

With each snapshot goes an ``ObjectiveStatusChange`` on
``legation.evaluate.objective-status.v1`` for every objective whose status is not the one
the job last saw acknowledged (``domain/objective_changes.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from legation.events.v1 import evaluate_pb2
from legation_core.codec import make_envelope
from legation_core.ids import stable_id
from legation_core.kafka import EventProducer, Pending
from legation_core.topic_names import EVALUATE_KPI_SNAPSHOTS_V1, EVALUATE_OBJECTIVE_STATUS_V1
from legation_evaluator.adapters.index import EventIndex
from legation_evaluator.domain.objective_changes import Status, status_changes
from legation_evaluator.domain.scorecard import scorecard_from_response
from legation_evaluator.domain.snapshots import split_snapshot

log = logging.getLogger(__name__)
SNAPSHOT_TICK_SECONDS = 30.0
"""How often the job looks whether its interval's snapshots are still due: a run skipped while
the index was being rebuilt is made up within this time, not a whole interval later."""
# The share of the producer's record limit (LEGATION_KAFKA_MAX_REQUEST_BYTES, 1 MiB by
# default) a snapshot's payload may take: the rest is room for the envelope, the headers and
# the record's own framing.
SNAPSHOT_SHARE = 0.5


class SnapshotJob:
    """The periodic job: one snapshot (in one or more parts) per campaign and interval."""

    def __init__(
        self,
        index: EventIndex,
        producer: EventProducer,
        interval_seconds: float,
        rebuilding: Callable[[], bool] = lambda: False,
        max_bytes: int | None = None,
    ) -> None:
        self.index = index
        self.producer = producer
        self.interval_seconds = interval_seconds
        self.rebuilding = rebuilding
        # What one part may take (default: half the producer's record limit).
        self.max_bytes = max_bytes or int(producer.max_request_bytes * SNAPSHOT_SHARE)
        self._done_slot: str | None = None  # the interval whose snapshots were all sent
        # (campaign id, objective id) → the status last sent and acknowledged.
        self._last_status: dict[str, dict[str, Status]] = {}
        self._proposed: dict[str, dict[str, Status]] = {}

    def __call__(self) -> None:
        now = datetime.now(UTC)
        # One snapshot per campaign per interval, whatever the retries.
        slot = str(int(now.timestamp() // self.interval_seconds))
        if slot == self._done_slot:
            return
        if self.rebuilding():
            log.info("kpi snapshots wait: the index is being rebuilt from Kafka")
            return
        queued: list[tuple[str, list[Pending]]] = []
        failed = 0
        for campaign_id in self.index.campaign_ids():
            try:
                records = self._send(campaign_id, now, slot)
            except Exception:
                failed += 1
                log.exception("kpi snapshot failed", extra={"campaign_id": campaign_id})
                continue
            if records:
                queued.append((campaign_id, records))
        emitted = 0
        for campaign_id, records in queued:
            try:
                self.producer.wait(records)
                emitted += 1
                self._last_status.setdefault(campaign_id, {}).update(
                    self._proposed.pop(campaign_id, {})
                )
            except Exception:
                failed += 1
                log.exception("kpi snapshot not acknowledged", extra={"campaign_id": campaign_id})
        if emitted or failed:
            log.info("kpi snapshots emitted", extra={"campaigns": emitted, "failed": failed})
        if not failed:
            self._done_slot = slot

    def _send(self, campaign_id: str, now: datetime, slot: str) -> list[Pending]:
        """Queues the campaign's snapshot (its parts); returns what to wait for."""
        campaign = self.index.campaign(campaign_id)
        if campaign is None:
            return []
        card = scorecard_from_response(campaign, self.index.scorecard_response(campaign), now)
        snapshot = evaluate_pb2.KpiSnapshot(
            snapshot_id=stable_id("kpi-snapshot", campaign_id, slot),
            campaign_id=campaign_id,
            kpis=card.kpis,
            objectives=card.objectives,
        )
        snapshot.computed_at.FromDatetime(now)
        split = split_snapshot(snapshot, self.max_bytes)
        for objective in split.too_large:
            log.error(
                "objective left out of the kpi snapshot: larger than a record",
                extra={
                    "campaign_id": campaign_id,
                    "objective_id": objective.objective_id[:200],
                    "bytes": objective.ByteSize(),
                    "max_bytes": self.max_bytes,
                },
            )
        if len(split.parts) > 1:
            log.warning(
                "kpi snapshot split into parts",
                extra={"campaign_id": campaign_id, "parts": len(split.parts)},
            )
        changes = status_changes(
            campaign,
            list(card.objectives),
            self._last_status.get(campaign_id, {}),
            snapshot.snapshot_id,
            now,
        )
        # Every status seen is remembered once acknowledged (the on-track ones a first sight
        # does not report too), so the next change is measured against it.
        self._proposed[campaign_id] = {
            objective.objective_id: objective.status for objective in card.objectives
        }
        pending = [
            self.producer.send(
                EVALUATE_OBJECTIVE_STATUS_V1,
                campaign_id,
                make_envelope(
                    change,
                    event_id=change.change_id,
                    source_service="evaluator",
                    occurred_at=now,
                    campaign_id=campaign_id,
                ),
            )
            for change in changes
        ]
        return pending + [
            self.producer.send(
                EVALUATE_KPI_SNAPSHOTS_V1,
                campaign_id,
                make_envelope(
                    part,
                    event_id=part.snapshot_id,
                    source_service="evaluator",
                    occurred_at=now,
                    campaign_id=campaign_id,
                ),
            )
            for part in split.parts
        ]
