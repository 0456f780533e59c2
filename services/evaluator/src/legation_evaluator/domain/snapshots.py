"""KPI snapshots that fit in a Kafka record: a campaign's snapshot too large for one record
(thousands of objectives) is split into parts, never dropped whole.

The first part keeps the snapshot's id, its KPIs and as many objectives as fit; each further
part carries the same campaign and ``computed_at`` with the next objectives, under an id
derived from the first. Every objective is in exactly one part, so what counts objectives
per snapshot (a dashboard, the index) sums the parts. An objective too large for a record
on its own (a reason of a megabyte) cannot be sent: it is handed back for the caller to
log, and the rest still goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from legation.events.v1 import evaluate_pb2
from legation_core.ids import stable_id

# Bytes a repeated message field costs beside its own size: the tag and a length of up to
# five bytes (a varint).
_FIELD_OVERHEAD = 6


@dataclass
class SnapshotParts:
    """The parts to send, in order, and the objectives that fit in no record."""

    parts: list[evaluate_pb2.KpiSnapshot] = field(default_factory=list)
    too_large: list[evaluate_pb2.ObjectiveStatus] = field(default_factory=list)


def part_id(snapshot_id: str, number: int) -> str:
    """The id of part ``number`` (0 is the snapshot itself) of a snapshot."""
    return snapshot_id if number == 0 else stable_id(snapshot_id, "part", str(number))


def split_snapshot(snapshot: evaluate_pb2.KpiSnapshot, max_bytes: int) -> SnapshotParts:
    """``snapshot`` as parts of at most ``max_bytes`` serialised each (the snapshot itself
    when it fits)."""
    if snapshot.ByteSize() <= max_bytes:
        return SnapshotParts(parts=[snapshot])
    result = SnapshotParts()
    current = _empty_part(snapshot, 0)
    current.kpis.extend(snapshot.kpis)
    size = current.ByteSize()
    for objective in snapshot.objectives:
        cost = objective.ByteSize() + _FIELD_OVERHEAD
        if _empty_part(snapshot, 1).ByteSize() + cost > max_bytes:
            result.too_large.append(objective)
            continue
        if size + cost > max_bytes:
            result.parts.append(current)
            current = _empty_part(snapshot, len(result.parts))
            size = current.ByteSize()
        current.objectives.append(objective)
        size += cost
    result.parts.append(current)
    return result


def _empty_part(snapshot: evaluate_pb2.KpiSnapshot, number: int) -> evaluate_pb2.KpiSnapshot:
    part = evaluate_pb2.KpiSnapshot(
        snapshot_id=part_id(snapshot.snapshot_id, number), campaign_id=snapshot.campaign_id
    )
    if snapshot.HasField("computed_at"):
        part.computed_at.CopyFrom(snapshot.computed_at)
    return part
