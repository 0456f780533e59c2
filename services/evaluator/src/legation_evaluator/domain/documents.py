"""One OpenSearch document per event, with a deterministic id.

The document is the envelope in proto3 JSON (field names as in the .proto files) plus
``campaign_ids``, every campaign the event counts for, and where it came from in Kafka.
Its id is the event id, so a replay or a redelivery overwrites instead of counting twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from legation_core.codec import Envelope, envelope_to_dict


@dataclass(frozen=True)
class Document:
    index: str
    doc_id: str
    body: dict[str, Any]


def index_name(prefix: str, envelope: Envelope) -> str:
    """One index per event type, for example ``legation-events-v1-mention``."""
    return f"{prefix}-{envelope.WhichOneof('payload')}"


def campaign_ids(envelope: Envelope) -> list[str]:
    """The envelope's campaign plus any campaigns the payload names (a mention counts for
    every campaign that tracks its issue)."""
    ids = [envelope.campaign_id] if envelope.campaign_id else []
    field = envelope.WhichOneof("payload")
    payload = getattr(envelope, field) if field else None
    for extra in getattr(payload, "campaign_ids", []):
        if extra not in ids:
            ids.append(extra)
    return ids


def document_for(
    prefix: str, envelope: Envelope, topic: str, partition: int, offset: int
) -> Document:
    body = envelope_to_dict(envelope)
    body["campaign_ids"] = campaign_ids(envelope)
    body["kafka"] = {"topic": topic, "partition": partition, "offset": offset}
    return Document(index_name(prefix, envelope), envelope.event_id, body)


def index_template(prefix: str) -> dict[str, Any]:
    """The index template for every event index: explicit types for what dashboards and
    scorecards aggregate on; other strings become keywords."""
    text = {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 1024}}}
    label = {
        "properties": {
            "value": {"type": "keyword"},
            "score": {"type": "float"},
            "model": {"type": "keyword"},
            "model_version": {"type": "keyword"},
        }
    }
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 100,
        "template": {
            "settings": {"number_of_shards": 1},
            "mappings": {
                "dynamic_templates": [
                    {
                        "strings_as_keywords": {
                            "match_mapping_type": "string",
                            "mapping": {"type": "keyword", "ignore_above": 1024},
                        }
                    }
                ],
                "properties": {
                    "event_id": {"type": "keyword"},
                    "event_type": {"type": "keyword"},
                    "schema_version": {"type": "integer"},
                    "occurred_at": {"type": "date"},
                    "observed_at": {"type": "date"},
                    "campaign_id": {"type": "keyword"},
                    "campaign_ids": {"type": "keyword"},
                    "issue_id": {"type": "keyword"},
                    "source_service": {"type": "keyword"},
                    "trace_id": {"type": "keyword"},
                    "kafka": {
                        "properties": {
                            "topic": {"type": "keyword"},
                            "partition": {"type": "integer"},
                            "offset": {"type": "long"},
                        }
                    },
                    "mention": {
                        "properties": {
                            "title": text,
                            "text": text,
                            "language": {"type": "keyword"},
                            "sentiment": label,
                            "reach": {"type": "long"},
                            "published_at": {"type": "date"},
                        }
                    },
                    "publication": {
                        "properties": {
                            "title": text,
                            "body": text,
                            "published_at": {"type": "date"},
                        }
                    },
                    "interaction": {
                        "properties": {
                            "kind": {"type": "keyword"},
                            "text": text,
                            "is_question": {"type": "boolean"},
                            "response_seconds": {"type": "float"},
                        }
                    },
                    "feedback": {"properties": {"rating": {"type": "integer"}, "text": text}},
                    "kpi_snapshot": {
                        "properties": {
                            "computed_at": {"type": "date"},
                            "kpis": {
                                "properties": {
                                    "name": {"type": "keyword"},
                                    "value": {"type": "double"},
                                }
                            },
                        }
                    },
                },
            },
        },
    }
