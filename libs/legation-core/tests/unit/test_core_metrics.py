"""Metrics live on an injected registry, so every test (and service) can use a fresh one."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

from legation_core.metrics import OTHER, BoundedLabel, Metrics


def test_metrics_register_on_the_given_registry() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    assert metrics.registry is registry
    metrics.consumed.labels(topic="t", group="g").inc(3)
    metrics.produced.labels(topic="t").inc()
    metrics.dead_lettered.labels(topic="t", group="g").inc(2)
    metrics.handler_failures.labels(group="g").inc()
    metrics.lag.labels(topic="t", partition="0", group="g").set(7)
    metrics.handler_seconds.labels(group="g").observe(0.25)
    metrics.last_poll.labels(group="g").set_to_current_time()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("legation_events_consumed_total", topic="t", group="g") == 3
    assert value("legation_events_produced_total", topic="t") == 1
    assert value("legation_events_dlq_total", topic="t", group="g") == 2
    assert value("legation_handler_failures_total", group="g") == 1
    assert value("legation_consumer_lag", topic="t", partition="0", group="g") == 7
    assert value("legation_handler_seconds_count", group="g") == 1
    assert value("legation_handler_seconds_sum", group="g") == 0.25
    last_poll = value("legation_consumer_last_poll_timestamp_seconds", group="g")
    assert last_poll is not None
    assert last_poll > 1_700_000_000


def test_separate_instances_do_not_share_state() -> None:
    first, second = Metrics(), Metrics()  # would raise on a shared registry (duplicates)
    assert first.registry is not second.registry
    first.produced.labels(topic="t").inc()
    assert first.registry.get_sample_value("legation_events_produced_total", {"topic": "t"}) == 1
    assert (
        second.registry.get_sample_value("legation_events_produced_total", {"topic": "t"}) is None
    )


def test_exposition_names_every_metric() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.consumed.labels(topic="t", group="g").inc()
    text = generate_latest(metrics.registry).decode()
    for name in (
        "legation_events_consumed_total",
        "legation_events_produced_total",
        "legation_events_dlq_total",
        "legation_handler_seconds",
        "legation_handler_failures_total",
        "legation_consumer_lag",
        "legation_consumer_last_poll_timestamp_seconds",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text


def test_a_bounded_label_keeps_the_first_values_safe_and_folds_the_rest_into_other() -> None:
    label = BoundedLabel(limit=3, max_length=10)
    assert [label(v) for v in ("a", "b", "a", "c")] == ["a", "b", "a", "c"]
    assert label("d") == OTHER and label("e") == OTHER
    assert label("a") == "a"  # a known value keeps its series
    assert label("") == "none"
    fresh = BoundedLabel(limit=5, max_length=10)
    # A NUL, an RTL override, a URL: only safe characters, and short.
    assert fresh("id\x00\u202eevil") == "id__evil"
    assert fresh("https://x.example/feed?token=abcdef") == "https:__x."


def test_a_hostile_client_cannot_grow_the_scrape() -> None:
    registry = CollectorRegistry()
    counter = Counter("legation_test_total", "test", ["issue_id"], registry=registry)
    label = BoundedLabel(limit=50)
    for number in range(10_000):
        counter.labels(issue_id=label(f"issue-{number}")).inc()
    series = [
        sample
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == "legation_test_total"
    ]
    assert len(series) == 51
    assert registry.get_sample_value("legation_test_total", {"issue_id": OTHER}) == 10_000 - 50
