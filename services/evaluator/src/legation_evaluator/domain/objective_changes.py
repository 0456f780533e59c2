"""Objective status changes: what a new KPI snapshot says about each objective against the
status the evaluator last saw, as ``ObjectiveStatusChange`` events (the notifier tells the
campaign's people when an objective turns at risk, and when it recovers)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TypeAlias

from legation.events.v1 import evaluate_pb2
from legation_core.ids import stable_id

Status: TypeAlias = evaluate_pb2.ObjectiveStatus.Status.ValueType
UNSPECIFIED = evaluate_pb2.ObjectiveStatus.STATUS_UNSPECIFIED
ON_TRACK = evaluate_pb2.ObjectiveStatus.STATUS_ON_TRACK


def status_changes(
    campaign: evaluate_pb2.Campaign,
    objectives: list[evaluate_pb2.ObjectiveStatus],
    last_seen: Mapping[str, Status],
    snapshot_id: str,
    now: datetime,
) -> list[evaluate_pb2.ObjectiveStatusChange]:
    """One change per objective whose status is not the one in ``last_seen`` (objective id →
    status). An objective not in it was not seen since start-up: it is reported with an
    unspecified ``from_status`` unless it is on track (the usual case, which would otherwise
    make every restart report every objective of every campaign). An objective without a
    status yet reports nothing."""
    described = {objective.objective_id: objective.description for objective in campaign.objectives}
    changes = []
    for objective in objectives:
        if objective.status == UNSPECIFIED:
            continue
        before = last_seen.get(objective.objective_id, UNSPECIFIED)
        if before == objective.status:
            continue
        if before == UNSPECIFIED and objective.status == ON_TRACK:
            continue
        change = evaluate_pb2.ObjectiveStatusChange(
            change_id=stable_id(
                "objective-status",
                campaign.campaign_id,
                objective.objective_id,
                str(objective.status),
                snapshot_id,
            ),
            campaign_id=campaign.campaign_id,
            campaign_name=campaign.name,
            objective_id=objective.objective_id,
            description=described.get(objective.objective_id, ""),
            metric=objective.metric,
            from_status=before,
            to_status=objective.status,
            value=objective.value,
            target=objective.target,
            reason=objective.reason,
            progress=objective.progress,
            snapshot_id=snapshot_id,
        )
        change.at.FromDatetime(now.astimezone(UTC))
        changes.append(change)
    return changes
