"""The topic catalog is the contract other departments build on: check it against itself,
against the protobuf schemas and against what each service's code names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from legation_core import topic_names
from legation_core.catalog import SERVICES, Catalog, default_catalog
from legation_core.codec import EventCodec, envelope_from_json, envelope_to_dict

ROOT = Path(__file__).resolve().parent.parent
TOPIC_NAME = re.compile(r"legation\.(listen|publish|engage|evaluate|notify)\.[a-z-]+\.v\d+")
# Produced by the shared runtime of every service (the gRPC audit trail), not by one step.
PLATFORM_TOPIC = re.compile(r"legation\.[a-z-]+\.v\d+")
# A topic named through legation_core.topic_names (LISTEN_MENTIONS_V1).
TOPIC_CONSTANT = re.compile(r"\b[A-Z][A-Z0-9_]*_V\d+\b")
STEP_OF = {
    "listener": "listen",
    "publisher": "publish",
    "engager": "engage",
    "evaluator": "evaluate",
    "notifier": "notify",
}


def test_the_shipped_catalog_is_the_repository_catalog() -> None:
    shipped = {spec.name: spec for spec in default_catalog()}
    source = {spec.name: spec for spec in Catalog.from_directory(ROOT / "topics")}
    assert shipped == source, "run `make contracts`: the generated package is stale"


@pytest.mark.parametrize("spec", list(default_catalog()), ids=lambda spec: spec.name)
def test_every_example_decodes_as_its_topic_message(spec: object) -> None:
    catalog = default_catalog()
    topic = catalog.topic(spec.name)  # type: ignore[attr-defined]
    envelope = envelope_from_json(topic.example)
    decoded = EventCodec(catalog).decode(topic.name, envelope.SerializeToString())
    assert decoded.WhichOneof("payload") == topic.payload_field
    assert decoded.event_type == topic.message_type
    # The example is complete: nothing in it was dropped by the schema.
    assert envelope_to_dict(decoded)[topic.payload_field]


def test_topic_names_follow_the_convention_and_belong_to_their_producer() -> None:
    for spec in default_catalog():
        if PLATFORM_TOPIC.fullmatch(spec.name):
            assert sorted(spec.producers) == sorted(SERVICES), spec.name
            assert spec.consumers, spec.name
            continue
        assert TOPIC_NAME.fullmatch(spec.name), spec.name
        step = spec.name.split(".")[1]
        assert [STEP_OF[p] for p in spec.producers] == [step], spec.name
        # A derived topic is for departments: no service consumes it.
        assert spec.consumers or spec.derived_from, spec.name


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_names_only_topics_the_catalog_grants_it(service: str) -> None:
    catalog = default_catalog()
    allowed = {s.name for s in catalog.produced_by(service)} | {
        s.name for s in catalog.consumed_by(service)
    }
    named = set()
    for path in (ROOT / "services" / service / "src").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        named |= {m.group(0) for m in TOPIC_NAME.finditer(text)}
        # Constants of legation_core.topic_names, by the topic they hold.
        named |= {
            getattr(topic_names, m.group(0))
            for m in TOPIC_CONSTANT.finditer(text)
            if hasattr(topic_names, m.group(0))
        }
    assert named, f"{service} names no topic at all"
    assert named <= allowed, f"{service} uses uncatalogued topics: {sorted(named - allowed)}"


def test_catalog_files_are_plain_yaml_with_one_topic_each() -> None:
    for path in sorted((ROOT / "topics").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert path.name == f"{raw['name']}.yaml"
        assert isinstance(raw["partitions"], int)
        assert raw["partitions"] >= 1


def test_a_derived_topic_decides_every_field_of_its_payload() -> None:
    """A field added to a source's message must be decided for every derived topic before
    it ships (never passed on undecided)."""
    catalog = default_catalog()
    derived = [spec for spec in catalog if spec.derived_from]
    assert derived
    for spec in derived:
        payload = getattr(envelope_from_json(spec.example), spec.payload_field)
        names = {field.name for field in payload.DESCRIPTOR.fields}
        assert set(spec.fields) == names, (spec.name, sorted(names ^ set(spec.fields)))
        assert spec.disclosure == "open", spec.name
