"""Engager settings (environment variables ``LEGATION_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from legation_core.config import CoreSettings


class EngagerSettings(CoreSettings):
    """Core settings plus the inbox rules, the reply channels and the periodic jobs."""

    grpc_port: int = Field(50063, ge=0, le=65535, description="gRPC API port")
    metrics_port: int = Field(9463, ge=0, le=65535, description="Prometheus /metrics port")
    engager_rules_file: Path | None = Field(
        None,
        description="YAML or JSON file of the inbox rules: which mentions open a "
        "conversation, priority weights and levels, SLA per priority, labels, assignment, "
        "approval, reply channels and saved replies (services/engager/README.md); without "
        "it every question opens a conversation",
    )
    engager_channels_file: Path | None = Field(
        None,
        description="YAML or JSON file of the channels replies and answers go through, in "
        "the legation-channels format; secrets come from the environment variables it names",
    )
    engager_jobs_interval_seconds: float = Field(
        5.0,
        gt=0,
        description="How often due replies and answers are delivered and SLA deadlines checked",
    )
    engager_delivery_max_attempts: int = Field(
        5, ge=1, le=100, description="Attempts of a reply delivery before it is recorded as failed"
    )
    engager_form_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of the public questions form (POST /questions/<questions_id>); "
        "unset: no form",
    )
    engager_form_questions_per_minute: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Most questions one client address may post to the form in a minute",
    )
