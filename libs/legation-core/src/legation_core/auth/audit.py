"""The audit record of a call (a command, or any denied call); :mod:`legation_core.audit`
sends it to ``legation.audit.v1``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import grpc
from google.protobuf.message import Message


class Outcome(Enum):
    GRANTED = "granted"  # a command that completed
    DENIED = "denied"  # refused: no or unknown credentials, or a missing role
    FAILED = "failed"  # allowed, but the call ended with an error status


@dataclass(frozen=True)
class AuditEvent:
    """One audited call: a command, or any denied call."""

    service: str
    method: str  # the full gRPC method, /package.Service/Method
    user: str  # empty when the caller could not be identified
    roles: frozenset[str]
    outcome: Outcome
    status: grpc.StatusCode
    detail: str
    peer: str
    authenticated_by: str  # token, certificate, disabled or "" (none)
    resource_ids: Mapping[str, str]
    trace_id: str
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    via: str = ""  # the delegate (the console) that called on the user's behalf
    units: frozenset[str] = frozenset()  # the person's units, as the delegate asserted them


AuditSink = Callable[[AuditEvent], None]


# Longest id value an audit record keeps (ids are at most 128 characters; a request refused
# for a longer one must still be audited within Kafka's record size).
MAX_AUDITED_ID = 128


def resource_ids(request: Any) -> dict[str, str]:
    """The request's top-level ``*_id`` string fields that are set: what the call acted on
    (each cut to :data:`MAX_AUDITED_ID` characters)."""
    if not isinstance(request, Message):
        return {}
    found: dict[str, str] = {}
    for descriptor, value in request.ListFields():
        if descriptor.name.endswith("_id") and isinstance(value, str) and value:
            found[descriptor.name] = value[:MAX_AUDITED_ID]
    return found
