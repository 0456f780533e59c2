"""Evaluator settings (environment variables ``LEGATION_*``)."""

from __future__ import annotations

from pydantic import Field

from legation_core.config import CoreSettings


class EvaluatorSettings(CoreSettings):
    grpc_port: int = Field(50064, ge=0, le=65535, description="gRPC API port")
    metrics_port: int = Field(9464, ge=0, le=65535, description="Prometheus /metrics port")
    opensearch_url: str = Field(
        "http://127.0.0.1:9200", pattern=r"^https?://", description="OpenSearch endpoint"
    )
    opensearch_username: str | None = Field(None, description="OpenSearch basic-auth user")
    opensearch_password: str | None = Field(None, description="OpenSearch basic-auth password")
    opensearch_ca_certs: str | None = Field(None, description="CA bundle for OpenSearch TLS")
    opensearch_timeout_seconds: float = Field(
        30.0, gt=0, le=300, description="OpenSearch request timeout"
    )
    evaluator_index_prefix: str = Field(
        "legation-events-v1",
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description=(
            "Prefix of the event indices (one index per event type, monthly for types "
            "whose topic deletes old records)"
        ),
    )
    evaluator_snapshot_seconds: float = Field(
        60.0, gt=0, description="How often KPI snapshots of every campaign are emitted"
    )
    evaluator_index_check_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description=(
            "How often the evaluator checks that the index still holds its data (a marker "
            "document; also after an index error); a lost index is rebuilt from Kafka"
        ),
    )
    evaluator_aggregates: bool = Field(
        True,
        description=(
            "Scorecards read per-campaign aggregates every evaluator replica keeps from the "
            "indexed topics (false: every scorecard searches the events)"
        ),
    )
    evaluator_aggregates_pace_ms: int = Field(
        250,
        ge=0,
        le=5_000,
        description=(
            "Least time between two reads of the log by the aggregates' tail while it keeps "
            "up: each read asks every partition of the indexed topics and their DLQs, which "
            "costs about the same CPU whatever it finds, so what comes meanwhile is counted "
            "together, up to about twice that later (0: read again at once; never paced while "
            "it catches up)"
        ),
    )
    web_port: int = Field(
        8064, ge=0, le=65535, description="Live scorecard page port (0 picks one)"
    )
    web_refresh_seconds: float = Field(
        2.0, gt=0, le=3600, description="How often the live scorecard page refreshes"
    )
