"""Engager settings (environment variables ``LEGATION_*``)."""

from __future__ import annotations

from pydantic import Field

from legation_core.config import CoreSettings


class EngagerSettings(CoreSettings):
    grpc_port: int = Field(50063, ge=0, le=65535, description="gRPC API port")
    metrics_port: int = Field(9463, ge=0, le=65535, description="Prometheus /metrics port")
