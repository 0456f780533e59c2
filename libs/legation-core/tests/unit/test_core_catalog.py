"""The topic catalog: loading, validation of entries, and who may use which topic."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from legation_core.catalog import (
    DLQ_SUFFIX,
    SERVICES,
    Catalog,
    CatalogError,
    TopicSpec,
    default_catalog,
    parse_topic,
    payload_field_for,
)
from legation_core.codec import EventCodec, envelope_from_json

REPO_TOPICS = Path(__file__).resolve().parents[4] / "topics"
MENTIONS = "legation.listen.mentions.v1"
INTERACTIONS = "legation.engage.interactions.v1"


def raw_entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "test.topic.v1",
        "description": "a topic for tests",
        "message_type": "legation.events.v1.Mention",
        "key": "mention_id",
        "producers": ["listener"],
        "consumers": ["engager"],
        "partitions": 2,
        "replication_factor": 1,
        "retention_ms": 60_000,
        "cleanup_policy": "delete",
        "example": {},
    }
    entry.update(overrides)
    return entry


def test_default_catalog_loads_every_topic_file() -> None:
    catalog = default_catalog()
    expected = sorted(path.stem for path in REPO_TOPICS.glob("*.yaml"))
    assert len(expected) >= 8
    assert sorted(spec.name for spec in catalog) == expected
    assert len(catalog) == len(expected)
    assert default_catalog() is catalog  # cached


@pytest.mark.parametrize("name", sorted(path.stem for path in REPO_TOPICS.glob("*.yaml")))
def test_every_example_decodes_and_validates(name: str) -> None:
    catalog = default_catalog()
    spec = catalog.topic(name)
    envelope = envelope_from_json(spec.example)
    EventCodec.validate(spec, envelope)
    assert envelope.WhichOneof("payload") == spec.payload_field
    decoded = EventCodec(catalog).decode(name, EventCodec.encode(envelope))
    assert decoded == envelope


def test_every_catalogued_topic_is_well_formed() -> None:
    for spec in default_catalog():
        assert spec.producers, spec.name
        assert spec.consumers or spec.derived_from, spec.name
        assert set(spec.producers) <= set(SERVICES)
        assert set(spec.consumers) <= set(SERVICES)
        assert spec.partitions >= 1
        assert spec.cleanup_policy in ("delete", "compact")
        assert spec.dlq == spec.name + DLQ_SUFFIX


def test_parse_topic_builds_a_spec() -> None:
    spec = parse_topic(raw_entry(internal=True), "t.yaml")
    assert spec == TopicSpec(
        name="test.topic.v1",
        description="a topic for tests",
        message_type="legation.events.v1.Mention",
        key="mention_id",
        producers=("listener",),
        consumers=("engager",),
        partitions=2,
        replication_factor=1,
        retention_ms=60_000,
        cleanup_policy="delete",
        internal=True,
        example={},
    )
    assert spec.dlq == "test.topic.v1.dlq"
    assert spec.payload_field == "mention"
    assert parse_topic(raw_entry(), "t.yaml").internal is False


@pytest.mark.parametrize("field", ["name", "producers", "partitions", "cleanup_policy", "example"])
def test_parse_topic_rejects_a_missing_field(field: str) -> None:
    entry = raw_entry()
    del entry[field]
    with pytest.raises(CatalogError, match=rf"^t\.yaml: missing {field}$"):
        parse_topic(entry, "t.yaml")


def test_parse_topic_names_every_missing_field() -> None:
    with pytest.raises(CatalogError) as raised:
        parse_topic({"name": "x"}, "x.yaml")
    assert "x.yaml" in str(raised.value)
    for field in ("description", "message_type", "key", "consumers", "retention_ms"):
        assert field in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"producers": ["listener", "spammer"]}, "unknown producers ['spammer']"),
        ({"consumers": ["ghost"]}, "unknown consumers ['ghost']"),
        ({"cleanup_policy": "compact,delete"}, "cleanup_policy must be delete or compact"),
        ({"cleanup_policy": "forever"}, "cleanup_policy must be delete or compact"),
        ({"partitions": 0}, "partitions must be at least 1"),
        ({"message_type": "legation.events.v1.Nothing"}, "not a payload"),
        ({"message_type": "google.protobuf.Timestamp"}, "not a payload"),
    ],
)
def test_parse_topic_rejects_bad_entries(overrides: Mapping[str, Any], message: str) -> None:
    with pytest.raises(CatalogError) as raised:
        parse_topic(raw_entry(**overrides), "bad.yaml")
    assert message in str(raised.value)


def test_payload_field_for_maps_full_names() -> None:
    assert payload_field_for("legation.events.v1.Mention") == "mention"
    assert payload_field_for("legation.events.v1.KpiSnapshot") == "kpi_snapshot"
    with pytest.raises(CatalogError):
        payload_field_for("legation.events.v1.Envelope")


def test_from_directory_requires_file_name_to_match(tmp_path: Path) -> None:
    (tmp_path / "wrong-name.yaml").write_text(yaml.safe_dump(raw_entry()), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"wrong-name\.yaml: file name must be test\.topic\.v1"):
        Catalog.from_directory(tmp_path)


def test_from_directory_refuses_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no topics"):
        Catalog.from_directory(tmp_path)


def test_from_directory_loads_entries(tmp_path: Path) -> None:
    (tmp_path / "test.topic.v1.yaml").write_text(yaml.safe_dump(raw_entry()), encoding="utf-8")
    catalog = Catalog.from_directory(tmp_path)
    assert [spec.name for spec in catalog] == ["test.topic.v1"]


def test_unknown_topic_is_a_catalog_error() -> None:
    with pytest.raises(CatalogError, match="topic nope is not in the catalog"):
        default_catalog().topic("nope")
    with pytest.raises(CatalogError):
        default_catalog().check_produce("listener", "nope")
    with pytest.raises(CatalogError):
        default_catalog().check_consume("engager", "nope")


def test_check_produce_allows_only_listed_producers() -> None:
    catalog = default_catalog()
    assert catalog.check_produce("listener", MENTIONS).name == MENTIONS
    for service in ("engager", "publisher", "evaluator", "stranger"):
        with pytest.raises(CatalogError, match=f"{service} may not produce to {MENTIONS}"):
            catalog.check_produce(service, MENTIONS)


def test_check_consume_allows_only_listed_consumers() -> None:
    catalog = default_catalog()
    assert catalog.check_consume("engager", MENTIONS).name == MENTIONS
    assert catalog.check_consume("evaluator", MENTIONS).name == MENTIONS
    # The listener reads its own mentions back at start-up (its duplicate index).
    assert catalog.check_consume("listener", MENTIONS).name == MENTIONS
    for service in ("publisher", "stranger"):
        with pytest.raises(CatalogError, match=f"{service} may not consume {MENTIONS}"):
            catalog.check_consume(service, MENTIONS)


def test_produced_by_and_consumed_by() -> None:
    catalog = default_catalog()
    assert INTERACTIONS in {spec.name for spec in catalog.produced_by("engager")}
    assert MENTIONS not in {spec.name for spec in catalog.produced_by("engager")}
    assert MENTIONS in {spec.name for spec in catalog.consumed_by("engager")}
    for spec in catalog.produced_by("listener"):
        assert "listener" in spec.producers
    assert catalog.produced_by("stranger") == []
