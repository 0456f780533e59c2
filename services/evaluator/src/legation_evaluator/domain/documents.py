"""One OpenSearch document per event, with a deterministic id in a deterministic index.

The document is the envelope in proto3 JSON (field names as in the .proto files) plus
``campaign_ids``, every campaign the event counts for, and where it came from in Kafka.
Its id is the event id, and its index follows from the event alone: events of a topic that
keeps records forever go to ``<prefix>-<type>``, events of a topic that deletes old records
to the month they occurred in, ``<prefix>-<type>-<yyyy.mm>`` (the ISM policy deletes whole
months). So a replay, a redelivery or a re-index from the log overwrites the same document
instead of counting it twice. (A rollover alias would not: a redelivery after a rollover
lands in the new backing index beside the old copy.)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from typing import Any

from legation_core.catalog import Catalog, default_catalog
from legation_core.codec import Envelope, envelope_to_dict


@dataclass(frozen=True)
class Document:
    index: str
    doc_id: str
    body: dict[str, Any]
    # OpenSearch's external version of the document (see :func:`event_version`): a write
    # of an older version of the same event is refused, so the live indexer and a rebuild
    # from Kafka can write side by side without an old copy overwriting a newer one.
    version: int = 0


def event_version(envelope: Envelope) -> int:
    """When the producer observed the event, in microseconds since the epoch (else when it
    occurred). Events that share an id (a mention and its later updates, keyed and ordered
    by that id) carry increasing times, so the latest is the highest version; a replay of
    the same record carries the same version."""
    stamp = envelope.observed_at if envelope.HasField("observed_at") else envelope.occurred_at
    return max(0, stamp.seconds * 1_000_000 + stamp.nanos // 1000)


def monthly_kinds(catalog: Catalog) -> frozenset[str]:
    """The event types (payload fields) indexed by month: those whose topic deletes old
    records, so their indices can be deleted a month at a time."""
    return frozenset(
        spec.payload_field
        for spec in catalog.consumed_by("evaluator")
        if spec.cleanup_policy == "delete" and spec.retention_ms > 0
    )


@cache
def default_monthly_kinds() -> frozenset[str]:
    return monthly_kinds(default_catalog())


def index_name(prefix: str, envelope: Envelope, monthly: Collection[str] | None = None) -> str:
    """``<prefix>-<type>`` (for example ``legation-events-v1-campaign``), or for a type in
    ``monthly`` ``<prefix>-<type>-<yyyy.mm>`` of the month the event occurred in (UTC)."""
    kind = envelope.WhichOneof("payload")
    if kind not in (default_monthly_kinds() if monthly is None else monthly):
        return f"{prefix}-{kind}"
    stamp = envelope.occurred_at if envelope.HasField("occurred_at") else envelope.observed_at
    return f"{prefix}-{kind}-{stamp.ToDatetime(tzinfo=UTC):%Y.%m}"


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
    prefix: str,
    envelope: Envelope,
    topic: str,
    partition: int,
    offset: int,
    monthly: Collection[str] | None = None,
) -> Document:
    """The document of one event (``monthly``: see :func:`index_name`; default from the
    catalog)."""
    body = envelope_to_dict(envelope)
    body["campaign_ids"] = campaign_ids(envelope)
    body["kafka"] = {"topic": topic, "partition": partition, "offset": offset}
    return Document(
        index_name(prefix, envelope, monthly), envelope.event_id, body, event_version(envelope)
    )


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
    keyword = {"type": "keyword", "ignore_above": 1024}
    date = {"type": "date"}
    status = {
        "properties": {
            "objective_id": keyword,
            "metric": keyword,
            "status": keyword,
            "value": {"type": "double"},
            "target": {"type": "double"},
            "baseline": {"type": "double"},
            "progress": {"type": "double"},
            "level": keyword,
            "reason": text,
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
                            "mention_id": keyword,
                            "source": keyword,
                            "source_url": keyword,
                            "author": keyword,
                            "author_id": keyword,
                            "title": text,
                            "text": text,
                            "language": {"type": "keyword"},
                            "sentiment": label,
                            "stance": label,
                            "language_detection": label,
                            "relevance": label,
                            # What earlier model versions said before a re-score replaced
                            # it: mention.label_history.model_version finds them.
                            "label_history": {
                                "properties": {
                                    "field": keyword,
                                    "value": keyword,
                                    "score": {"type": "float"},
                                    "model": keyword,
                                    "model_version": keyword,
                                    "replaced_at": date,
                                }
                            },
                            "reach": {"type": "long"},
                            "influence": {"type": "float"},
                            "hashtags": keyword,
                            "mentioned_accounts": keyword,
                            "links": keyword,
                            "duplicate_of": keyword,
                            "in_reply_to": keyword,
                            "thread_id": keyword,
                            "published_at": {"type": "date"},
                        }
                    },
                    "mention_label": {
                        "properties": {
                            "mention_id": keyword,
                            "relevance": keyword,
                            "stance": keyword,
                            "sentiment": keyword,
                            "text": text,
                            "language": keyword,
                            "labelled_by": keyword,
                            "labelled_at": date,
                            "model_relevance": label,
                            "model_stance": label,
                            "model_sentiment": label,
                        }
                    },
                    "publication": {
                        "properties": {
                            "post_id": keyword,
                            "channel": keyword,
                            "language": keyword,
                            "title": text,
                            "body": text,
                            "published_at": {"type": "date"},
                        }
                    },
                    "interaction": {
                        "properties": {
                            "conversation_id": keyword,
                            "mention_id": keyword,
                            "kind": {"type": "keyword"},
                            "channel": keyword,
                            "actor": keyword,
                            "language": keyword,
                            "text": text,
                            "is_question": {"type": "boolean"},
                            "response_seconds": {"type": "float"},
                        }
                    },
                    "link_click": {
                        "properties": {
                            "post_id": keyword,
                            "code": keyword,
                            "channel": keyword,
                            "language": keyword,
                            "clicked_at": date,
                        }
                    },
                    "partner_activity": {
                        "properties": {
                            "partner_id": keyword,
                            "kind": keyword,
                            "joint": {"type": "boolean"},
                            "occurred_at": date,
                            "issue_ids": keyword,
                        }
                    },
                    "alert": {
                        "properties": {
                            "window_start": date,
                            "window_end": date,
                            "count": {"type": "integer"},
                            "baseline_mean": {"type": "double"},
                            "baseline_stddev": {"type": "double"},
                            "threshold": {"type": "double"},
                        }
                    },
                    "community_report": {
                        "properties": {
                            "window_start": date,
                            "window_end": date,
                            "computed_at": date,
                            "mentions": {"type": "integer"},
                            "communities": {
                                "properties": {
                                    "kind": keyword,
                                    "key": keyword,
                                    "label": keyword,
                                    "rank": {"type": "integer"},
                                    "score": {"type": "double"},
                                    "mentions": {"type": "integer"},
                                    "growth": {"type": "double"},
                                    "reach": {"type": "long"},
                                    "engagement": {"type": "integer"},
                                }
                            },
                            "suggestions": {
                                "properties": {"source": keyword, "kind": keyword, "reason": text}
                            },
                        }
                    },
                    "theme_report": {
                        "properties": {
                            "window_start": date,
                            "window_end": date,
                            "computed_at": date,
                            "mentions": {"type": "integer"},
                            "themes": {
                                "properties": {
                                    "label": keyword,
                                    "mentions": {"type": "integer"},
                                    "trend": {"type": "double"},
                                }
                            },
                            "angles": {
                                "properties": {
                                    "label": keyword,
                                    "rank": {"type": "integer"},
                                    "score": {"type": "double"},
                                    "addressed": {"type": "boolean"},
                                    "reason": text,
                                }
                            },
                        }
                    },
                    "feedback": {
                        "properties": {
                            "rating": {"type": "integer"},
                            "text": text,
                            "from_role": keyword,
                            "about": keyword,
                            "about_kind": keyword,
                            "organisation": keyword,
                        }
                    },
                    "kpi_snapshot": {
                        "properties": {
                            "computed_at": {"type": "date"},
                            "kpis": {
                                "properties": {
                                    "name": {"type": "keyword"},
                                    "value": {"type": "double"},
                                    "baseline": {"type": "double"},
                                }
                            },
                            "objectives": status,
                        }
                    },
                    "after_action_review": {
                        "properties": {
                            "reviewed_at": date,
                            "mean_rating": {"type": "double"},
                            "feedback_count": {"type": "integer"},
                            "objectives": status,
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


# Bulk item errors that a retry of the same document may fix: the cluster is overloaded
# (429), failing (5xx), read-only because its disk filled up (cluster_block_exception), or
# the index is closed or missing (auto-create off, deleted meanwhile). Anything else (a
# mapping conflict, a malformed value) fails again: the event goes to the DLQ.
RETRYABLE_ERROR_TYPES = frozenset(
    {
        "cluster_block_exception",
        "index_closed_exception",
        "index_not_found_exception",
        "es_rejected_execution_exception",
        "circuit_breaking_exception",
        "unavailable_shards_exception",
        "process_cluster_event_timeout_exception",
    }
)


def superseded(status: int, error: Any) -> bool:
    """True when a bulk item failed because the index holds a newer version of the event
    (:func:`event_version`): the write is done as far as the caller is concerned."""
    error_type = error.get("type") if isinstance(error, dict) else None
    return status == 409 and error_type == "version_conflict_engine_exception"


def retryable(status: int, error: Any) -> bool:
    """True when a failed bulk item should be retried rather than dead-lettered."""
    if status == 429 or status >= 500:
        return True
    error_type = error.get("type") if isinstance(error, dict) else None
    return error_type in RETRYABLE_ERROR_TYPES
