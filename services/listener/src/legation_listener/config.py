"""Listener settings (environment variables ``LEGATION_*``)."""

from __future__ import annotations

from pydantic import Field

from legation_core.config import CoreSettings


class ListenerSettings(CoreSettings):
    """The core settings plus how often and how patiently feeds are read."""

    grpc_port: int = Field(50061, ge=0, le=65535, description="gRPC API port")
    metrics_port: int = Field(9461, ge=0, le=65535, description="Prometheus /metrics port")
    listener_poll_seconds: float = Field(
        60.0, gt=0, description="Interval between two polls of every tracked feed"
    )
    listener_fetch_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Timeout of one HTTP request for a feed"
    )
    listener_fetch_retries: int = Field(
        3, ge=0, le=10, description="Retries of a feed read after a connection error, 5xx or 429"
    )
    listener_preview_buffer_items: int = Field(
        1000,
        ge=0,
        le=100_000,
        description="Most recent feed items kept in memory for PreviewQuery",
    )
    listener_spike_baseline_hours: int = Field(
        12, ge=1, le=168, description="Hours before a window that form its spike baseline"
    )
    listener_spike_stddevs: float = Field(
        3.0, ge=0, le=100, description="A spike exceeds the baseline mean by this many stddevs"
    )
    listener_spike_min_count: int = Field(
        10, ge=1, description="Fewest mentions in an hour that can be a spike"
    )
