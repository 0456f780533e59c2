"""AuditEvent → AuditRecord envelope: complete, valid for the audit topic from every
service, and never tied to a campaign."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from legation.events.v1 import audit_pb2
from legation_core.audit import audit_envelope
from legation_core.auth import AuditEvent, Outcome
from legation_core.catalog import SERVICES, default_catalog
from legation_core.codec import EventCodec
from legation_core.topic_names import AUDIT_V1


def event(**overrides: object) -> AuditEvent:
    fields: dict[str, object] = {
        "service": "legation.publisher.v1.PublisherService",
        "method": "/legation.publisher.v1.PublisherService/CreatePost",
        "user": "ana",
        "roles": frozenset({"viewer", "editor"}),
        "outcome": Outcome.FAILED,
        "status": grpc.StatusCode.INVALID_ARGUMENT,
        "detail": "title is required",
        "peer": "ipv4:10.0.0.7:5000",
        "authenticated_by": "token",
        "resource_ids": {"campaign_id": "plastics-2026"},
        "trace_id": "t-1",
        "occurred_at": datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
    }
    fields.update(overrides)
    return AuditEvent(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_may_produce_a_valid_audit_record(service: str) -> None:
    catalog = default_catalog()
    envelope = audit_envelope(event(), service)
    EventCodec.validate(catalog.check_produce(service, AUDIT_V1), envelope)
    decoded = EventCodec(catalog).decode(AUDIT_V1, envelope.SerializeToString())
    record = decoded.audit_record
    assert record.outcome == audit_pb2.AuditRecord.OUTCOME_FAILED
    assert record.status_code == "INVALID_ARGUMENT"
    assert list(record.roles) == ["editor", "viewer"]
    assert dict(record.resource_ids) == {"campaign_id": "plastics-2026"}
    assert (decoded.source_service, decoded.trace_id) == (service, "t-1")
    assert decoded.occurred_at.ToDatetime(tzinfo=UTC) == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert decoded.campaign_id == "" and decoded.issue_id == ""


def test_each_call_is_its_own_record() -> None:
    same = event()
    assert audit_envelope(same, "publisher").event_id != audit_envelope(same, "publisher").event_id
