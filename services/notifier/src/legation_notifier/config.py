"""Notifier settings (environment variables ``LEGATION_*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from legation_core.config import CoreSettings


class NotifierSettings(CoreSettings):
    """Core settings plus the people file, the SMTP server and the dispatcher's pace."""

    grpc_port: int = Field(50065, ge=0, le=65535, description="gRPC API port")
    metrics_port: int = Field(9465, ge=0, le=65535, description="Prometheus /metrics port")
    notifier_people_file: Path | None = Field(
        None,
        description="YAML or JSON file of the people to notify: roles, time zone, channels "
        "(e-mail address; Slack, Teams, Matrix and webhook secrets by environment variable), "
        "what they own, follow and mute, and their choices per kind (services/notifier/"
        "README.md); required",
    )
    notifier_smtp_host: str = Field("127.0.0.1", min_length=1, description="SMTP server")
    notifier_smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port")
    notifier_smtp_starttls: bool = Field(
        True, description="Upgrade the SMTP session with STARTTLS before anything is sent"
    )
    notifier_smtp_ssl: bool = Field(False, description="SMTP over TLS from the start (SMTPS)")
    notifier_smtp_username: str = Field("", description="SMTP AUTH user; empty: no AUTH")
    notifier_smtp_password: str = Field("", description="SMTP AUTH password")
    notifier_smtp_ca_file: Path | None = Field(
        None, description="PEM CA of the SMTP server's certificate; the system's CAs otherwise"
    )
    notifier_sender: str = Field(
        "legation@localhost",
        pattern=r"^[^@\s<>,]+@[^@\s<>,]+$",
        description="The From address of notification e-mails",
    )
    notifier_interval_seconds: float = Field(
        5.0,
        gt=0,
        le=3600,
        description="How often due notifications and digests are sent and quiet episodes closed",
    )
    notifier_delivery_max_attempts: int = Field(
        6, ge=1, le=100, description="Attempts of a notification before it is recorded as failed"
    )
    notifier_max_event_age_hours: float = Field(
        24.0,
        gt=0,
        description="Events older than this update episodes but notify nobody (a first start "
        "over a long history does not page everyone about last month)",
    )
