"""How far a consumer group is behind: the positive signal that a service has handled
everything written so far (tests wait for it instead of sleeping, the restarts experiment
measures it)."""

from __future__ import annotations

from collections.abc import Iterable

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from legation_core.catalog import default_catalog


def uncommitted(bootstrap: str, group: str, topics: Iterable[str]) -> int:
    """Records on ``topics`` that ``group`` has not committed yet (0: it has handled every
    record written to them so far)."""
    names = set(topics)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    committed = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
    catalog = default_catalog()
    partitions = [
        TopicPartition(name, number)
        for name in sorted(names)
        for number in range(catalog.topic(name).partitions)
    ]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        end = consumer.end_offsets(partitions)
    finally:
        consumer.close()
    return sum(
        offset - max(0, committed.get((tp.topic, tp.partition), 0)) for tp, offset in end.items()
    )


def service_group(service: str, consumer: str) -> str:
    """The consumer group of ``service``'s consumer ``consumer`` (as the runtime names it)."""
    return f"legation.{service}.{consumer}"


def consumed_by(service: str) -> list[str]:
    """The topics ``service`` consumes, from the catalog."""
    return [topic.name for topic in default_catalog().consumed_by(service)]
