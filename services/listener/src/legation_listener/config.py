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
