"""Prometheus metrics shared by every service, on an injected registry so tests use a
fresh one.

Label values are bounded: a label takes its values from a fixed set (an outcome, a state,
a priority), from the topic catalog (topics, consumer groups, partitions), or through
:class:`BoundedLabel`, which keeps the first few distinct values of a free-form one (a
channel name, an issue id, a feed host) in a safe character set and folds the rest into
``other``. A URL, a token or an arbitrary client-chosen id never becomes a label value, so
neither a careless nor a hostile client can grow the scrape without end.
"""

from __future__ import annotations

import re
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

OTHER = "other"
"""The label value of every value beyond a :class:`BoundedLabel`'s limit."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]")


class BoundedLabel:
    """Maps free-form values to at most ``limit`` + 2 label values: the first ``limit``
    distinct values seen (each cut to ``max_length`` characters of ``A-Z a-z 0-9 . _ : -``,
    anything else replaced by ``_``), ``"other"`` for every later one, and ``"none"`` for
    an empty value. Thread-safe; the set is fixed for the life of the process, so a series
    never changes meaning."""

    def __init__(self, limit: int = 50, max_length: int = 64) -> None:
        self.limit = limit
        self.max_length = max_length
        self._lock = threading.Lock()
        self._known: set[str] = set()

    def __call__(self, value: str) -> str:
        """The label value standing for ``value``."""
        safe = _UNSAFE.sub("_", value[: self.max_length])
        if not safe:
            return "none"
        with self._lock:
            if safe in self._known:
                return safe
            if len(self._known) >= self.limit:
                return OTHER
            self._known.add(safe)
            return safe


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
