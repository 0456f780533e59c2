"""The gRPC audit trail on Kafka: every audited call becomes an ``AuditRecord`` event on
``legation.audit.v1`` (see ``topics/legation.audit.v1.yaml``).

:class:`~legation_core.lifecycle.ServiceRuntime` hands :class:`KafkaAuditSink` to the auth
interceptor, so every service audits the same way without code of its own.
"""

from __future__ import annotations

import uuid

from legation.events.v1 import audit_pb2
from legation_core.auth import AuditEvent, Outcome
from legation_core.codec import Envelope, make_envelope
from legation_core.kafka import EventProducer
from legation_core.topic_names import AUDIT_V1

AuditRecord = audit_pb2.AuditRecord

_OUTCOMES = {
    Outcome.GRANTED: AuditRecord.OUTCOME_GRANTED,
    Outcome.DENIED: AuditRecord.OUTCOME_DENIED,
    Outcome.FAILED: AuditRecord.OUTCOME_FAILED,
}


def audit_record(event: AuditEvent) -> audit_pb2.AuditRecord:
    """The event's payload message."""
    return AuditRecord(
        method=event.method,
        user=event.user,
        roles=sorted(event.roles),
        outcome=_OUTCOMES[event.outcome],
        status_code=event.status.name,
        detail=event.detail,
        peer=event.peer,
        authenticated_by=event.authenticated_by,
        resource_ids=dict(event.resource_ids),
        via=event.via,
        units=sorted(event.units),
    )


def audit_envelope(event: AuditEvent, service: str) -> Envelope:
    """The envelope of one audited call. Each call is its own record (a retried command is
    audited twice), so the id is random; campaign and issue stay empty on purpose, so audit
    records never count in a campaign's KPIs."""
    return make_envelope(
        audit_record(event),
        event_id=str(uuid.uuid4()),
        source_service=service,
        occurred_at=event.occurred_at,
        trace_id=event.trace_id,
    )


class KafkaAuditSink:
    """Sends each audit event without waiting for the broker (the producer flushes at
    shutdown); a record the broker refuses is logged and counted by the producer."""

    def __init__(self, producer: EventProducer, service: str) -> None:
        self.producer = producer
        self.service = service

    def __call__(self, event: AuditEvent) -> None:
        self.producer.send_in_background(AUDIT_V1, event.user, audit_envelope(event, self.service))
