"""Prometheus metrics shared by every service, on an injected registry so tests use a
fresh one."""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

M = TypeVar("M", Counter, Gauge, Histogram)


class Bound(Generic[M]):
    """A labelled metric's children, each looked up once: ``labels()`` checks its arguments
    and takes a lock on every call, which the per-event path should not pay. Call it with
    the label values in the metric's label order."""

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        """The child of ``values`` (created on first use, like ``labels(*values)``)."""
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Metrics:
    """The runtime's metrics; services add their own on the same ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.consumed = Counter(
            "legation_events_consumed_total",
            "Records taken from a topic by a consumer group",
            ["topic", "group"],
            registry=self.registry,
        )
        self.produced = Counter(
            "legation_events_produced_total",
            "Events acknowledged by the broker",
            ["topic"],
            registry=self.registry,
        )
        self.produce_failures = Counter(
            "legation_events_produce_failures_total",
            "Events sent without waiting that the broker did not acknowledge (audit records)",
            ["topic"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "legation_events_dlq_total",
            "Records sent to a dead-letter topic",
            ["topic", "group"],
            registry=self.registry,
        )
        self.handler_seconds = Histogram(
            "legation_handler_seconds",
            "Time to handle one consumed batch, produce its results and commit",
            ["group"],
            registry=self.registry,
        )
        self.handler_failures = Counter(
            "legation_handler_failures_total",
            "Batches that failed with a transient error and were retried",
            ["group"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "legation_consumer_lag",
            "Records between the group's position and the partition's high watermark",
            ["topic", "partition", "group"],
            registry=self.registry,
        )
        self.last_poll = Gauge(
            "legation_consumer_last_poll_timestamp_seconds",
            "When the consume loop last polled (liveness)",
            ["group"],
            registry=self.registry,
        )
