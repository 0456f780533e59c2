"""Deterministic identifiers: the same input always gives the same id, so a replay or a
retried request produces the same event and the same document, never a second one."""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("5b0c7f4e-1d0a-4c55-9a2f-6c1e8d3b7a90")


def stable_id(*parts: str) -> str:
    """A UUIDv5 string derived from ``parts`` (order matters)."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


def new_trace_id() -> str:
    """A fresh random trace id for a story that starts here."""
    return uuid.uuid4().hex
