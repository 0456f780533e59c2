"""The console's Prometheus metrics, on an injected registry so tests use a fresh one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ConsoleMetrics:
    """Requests served, page render time, and the gRPC calls made for them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "legation_console_requests_total",
            "HTTP requests answered, by route and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "legation_console_request_seconds",
            "Time to answer an HTTP request (a page: its gRPC calls and rendering)",
            ["route"],
            registry=self.registry,
        )
        self.grpc_seconds = Histogram(
            "legation_console_grpc_seconds",
            "Time of one gRPC call to a service on behalf of a person",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.live_streams = Gauge(
            "legation_console_live_streams",
            "Server-sent event streams open (live pages)",
            registry=self.registry,
        )
        self.sign_ins = Counter(
            "legation_console_sign_ins_total",
            "Sign-ins at the identity provider, by outcome",
            ["outcome"],
            registry=self.registry,
        )
